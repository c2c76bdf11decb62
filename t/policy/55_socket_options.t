# mod_proxy's socket directives on the outgoing connection, on a
# standalone httpd this test starts (one child, so that its system calls
# can be watched).  The manual ("httpd directives this module honours"):
#   ProxySourceAddress: outgoing connections are bound to it for
#     destinations of the same family; the other family is dialled
#     unbound; a bind that fails makes that address count as failed, so a
#     target with one address gets 502 (CT00027), and nothing is sent;
#   ProxyReceiveBufferSize: SO_RCVBUF of the outgoing socket (Linux
#     reports twice the value, as rb in ss's skmem);
#   ProxyIOBufferSize: the relay buffer, the most read in one step,
#     capped at the core's FlushMaxThreshold (65535 by default, so the
#     default 64 KiB request becomes 65535); on a worker's zero-copy path
#     it is the requested pipe size.  Seen with strace: the size of the
#     reads from the origin on the filter path, the F_SETPIPE_SZ request
#     on the zero-copy path.  Tunnels in reactors do not use it (their
#     sizes are fixed), so those rows do not apply to the reactor run.
# 192.0.2.1 (TEST-NET-1) is bound to, never sent to: the bind fails
# locally with EADDRNOTAVAIL.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::IP;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of free_port suite_mode wait_until);
use CT::Origin qw(accept_within listener);
use CT::Client qw(exchange read_bytes read_head);

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 150;

my $mode = suite_mode();
my $origin = listener();
my $oport = $origin->sockport;
my $origin6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Listen => 16, ReuseAddr => 1)
    or die "listen on [::1]: $!";

# Virtual hosts: name => directives.
my %vhosts = (
    src      => 'ProxySourceAddress 127.0.0.3',
    badsrc   => 'ProxySourceAddress 192.0.2.1',
    rcvbuf   => 'ProxyReceiveBufferSize 50000',
    io16k    => 'ProxyIOBufferSize 16384',
    io200k   => 'ProxyIOBufferSize 200000',
    io200kft => "ProxyIOBufferSize 200000\n    FlushMaxThreshold 262144",
);
my %port;
my $conf = "StartServers 1\nServerLimit 1\nThreadsPerChild 16\n"
         . "MaxRequestWorkers 16\nMinSpareThreads 1\nMaxSpareThreads 16\n"
         . "LogLevel info connect_tunnel:debug\n";
for my $v (sort keys %vhosts) {
    $port{$v} = free_port();
    $conf .= "Listen 127.0.0.1:$port{$v}\n"
           . "<VirtualHost 127.0.0.1:$port{$v}>\n    $vhosts{$v}\n"
           . "</VirtualHost>\n";
}

# Source address: [vhost, target listener, wanted peer address, desc].
my @source = (
    [ 'src', $origin, '127.0.0.3', 'ProxySourceAddress 127.0.0.3' ],
    [ 'src', $origin6, '::1',
      'ProxySourceAddress 127.0.0.3, an IPv6 target: dialled unbound' ],
    [ 'main', $origin, '127.0.0.1', 'no ProxySourceAddress' ],
);

# Relay buffer: [vhost, wanted size, sizes that must not be used, desc].
my @iobuf = (
    [ 'io16k', 16384, [65535], 'ProxyIOBufferSize 16384' ],
    [ 'main', 65535, [65536], 'no ProxyIOBufferSize: 64 KiB capped at '
                            . 'FlushMaxThreshold 65535' ],
    [ 'io200k', 65535, [200000], 'ProxyIOBufferSize 200000 capped at '
                               . 'FlushMaxThreshold 65535' ],
    [ 'io200kft', 200000, [65535], 'ProxyIOBufferSize 200000 under '
                                 . 'FlushMaxThreshold 262144' ],
);

plan tests => 3 * @source + 4 + 2 + 2 * @iobuf;

my $httpd = CT::Server->start(conf => $conf);
$port{main} = $httpd->port;

sub error_log_from {
    my $from = shift;
    open my $fh, '<', $httpd->file('error_log') or return '';
    seek $fh, $from, 0;
    local $/;
    return <$fh> // '';
}

# A CONNECT to $listener through vhost $v: (client, status, accepted).
sub via {
    my ($v, $listener) = @_;
    my $host = $listener->sockhost;
    my $target = ($host =~ /:/ ? "[$host]" : $host) . ':'
               . $listener->sockport;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port{$v}, Timeout => 10)
        or die "connect to $v: $!";
    $s->autoflush(1);
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my $o = accept_within($listener, 5);
    my ($status, $h) = read_head($s, 10);
    return ($s, $status // '', $o, $h);
}

for my $c (@source) {
    my ($v, $l, $want, $desc) = @$c;
    my ($s, $status, $o) = via($v, $l);
    is($status, 200, "$desc: 200");
    is($o ? $o->peerhost : '', $want, "$desc: the origin sees $want");
    my ($up, $down) = $o ? exchange($s, $o, 'ping', 'pong', 10) : ('', '');
    is("$up/$down", 'ping/pong', "$desc: the tunnel relays");
    close $s;
    close $o if $o;
}

# A source address this host does not have.
{
    my $from = -s $httpd->file('error_log');
    my ($s, $status, $o, $h) = via('badsrc', $origin);
    is($status, 502, 'ProxySourceAddress 192.0.2.1 (not local): 502');
    like($h ? $h->{'proxy-status'} // '' : '',
         qr/error=destination_ip_unroutable/,
         'bind failure: Proxy-Status destination_ip_unroutable');
    ok(!$o, 'bind failure: the origin got no connection');
    my $log = error_log_from($from);
    ok($log =~ /CT00020: connect to 127\.0\.0\.1:$oport failed/
       && $log =~ /Cannot assign requested address/
       && $log =~ /CT00027: connect to 127\.0\.0\.1:$oport failed: every /,
       'bind failure: CT00020 with the bind error, then CT00027');
    close $s;
}

# The receive buffer of the outgoing socket, as ss reports it.
sub outgoing_rb {
    my $out = `ss -tmnH state established '( dport = :$oport )' 2>&1`;
    return $out =~ /\brb(\d+)/ ? $1 : "none in: $out";
}
for my $c ([ 'rcvbuf', 100000, 'ProxyReceiveBufferSize 50000: rb is '
                              . '2 x 50000' ],
           [ 'main', undef, 'no ProxyReceiveBufferSize: the system\'s '
                            . 'own size' ]) {
    my ($v, $want, $desc) = @$c;
    my ($s, $status, $o) = via($v, $origin);
    my $rb = $status eq '200' ? outgoing_rb() : "status $status";
    if (defined $want) {
        is($rb, $want, $desc);
    }
    else {
        ok($rb =~ /^\d+$/ && $rb != 100000, "$desc ($rb)");
    }
    close $s;
    close $o if $o;
}

# The relay buffer, seen from the child's system calls.
my ($child) = children_of($httpd->pid);
my $strace = (grep { -x "$_/strace" } split /:/, $ENV{PATH})[0];
for my $c (@iobuf) {
    my ($v, $want, $not, $desc) = @$c;
  SKIP: {
        skip "$desc: tunnels in reactors do not use ProxyIOBufferSize", 2
            if $mode eq 'reactor';
        skip "$desc: no strace on this system", 2 unless $strace;
        my $out = "$httpd->{dir}/strace.$v";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open STDERR, '>', "$out.err";
            { exec 'timeout', '30', "$strace/strace", '-f', '-qq', '-p',
                   $child, '-e', 'trace=read,fcntl', '-o', $out };
            POSIX::_exit(127);
        }
        # Time to attach to the child's threads.
        sleep 1;
        my ($s, $status, $o) = via($v, $origin);
        my ($up, $down) = $o ? exchange($s, $o, '', 'd' x 300_000, 20)
                             : ('', '');
        close $s;
        close $o if $o;
        sleep 0.5;
        kill 'INT', $pid;
        waitpid $pid, 0;
        open my $fh, '<', $out or die "$out: $!";
        my $trace = do { local $/; <$fh> };
        my %sizes;
        if ($mode eq 'filter') {
            $sizes{$1} = 1 while $trace =~ /\bread\(\d+, .*?, (\d+)\) = /g;
        }
        else {
            $sizes{$1} = 1 while $trace =~ /F_SETPIPE_SZ, (\d+)\)/g;
        }
        my $what = $mode eq 'filter' ? 'reads of' : 'pipes asked of';
        ok(length $down == 300_000 && $sizes{$want},
           "$desc: $what $want bytes ($mode)")
            or diag 'sizes seen: ' . join ' ', sort keys %sizes;
        ok(!grep({ $sizes{$_} } @$not),
           "$desc: never $what " . join('/', @$not) . ' bytes');
    }
}

$httpd->stop;
