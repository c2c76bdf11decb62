# Chaining through several ProxyRemote entries, on a standalone httpd that
# this test starts (its upstream proxies are listeners the test runs, on
# ports known only at run time).  What the manual promises:
#   - an upstream that fails with a 502 (refuses the connection, refuses
#     the tunnel, answers garbage) makes mod_proxy try the next matching
#     entry; when every entry failed, the direct attempt is refused (502,
#     CT00017): chaining fails closed;
#   - a 504 (the upstream did not answer, or could not be connected to, in
#     time) is not retried: the next entry never sees a connection;
#   - the request note tunnel-upstream-failed names the upstream that
#     failed (the last one when several did), also when a later entry
#     carried the tunnel;
#   - an upstream reply head longer than 8192 bytes is a 502 (CT00024),
#     and none of its bytes reach the client; a head of exactly 8192 bytes
#     is still read.
# The target is a listener of its own: it must never be dialled directly.
# Run in every relay mode: the relay after the upstream's 200 is the run's.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use IO::Socket::INET;
use Socket qw(PF_INET SOCK_STREAM pack_sockaddr_in inet_aton);
use Time::HiRes qw(time sleep);
use CT::Server qw(free_port wait_until);
use CT::Origin qw(accept_within listener read_request_head);
use CT::Client qw(read_bytes read_head);

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 170;

my $ok200 = "HTTP/1.1 200 Connection established\r\n\r\n";

# A port on $addr that refuses connections while the socket lives.
sub refusing {
    my $addr = shift;
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_in(0, inet_aton($addr))) or die "bind: $!";
    my $port = (Socket::unpack_sockaddr_in(getsockname $s))[0];
    return { kind => 'closed', sock => $s, addr => $addr, port => $port };
}

# A listener on $addr whose accept queue is full: connects to it hang.
sub full {
    my $addr = shift;
    socket(my $l, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($l, pack_sockaddr_in(0, inet_aton($addr))) or die "bind: $!";
    listen($l, 0) or die "listen: $!";
    my $port = (Socket::unpack_sockaddr_in(getsockname $l))[0];
    my @q = grep { $_ } map {
        IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port,
                              Timeout => 1)
    } 1 .. 2;
    return { kind => 'full', sock => $l, queued => \@q, addr => $addr,
             port => $port };
}

# A listening upstream of the given kind (what it does once it read the
# CONNECT: ok = 200 then echo, 403, garbage, silent = hold, or a reply
# head of exactly $len bytes).
sub upstream {
    my ($addr, $kind, %o) = @_;
    my $l = listener(addr => $addr);
    return { kind => $kind, sock => $l, addr => $addr,
             port => $l->sockport, %o };
}

# A 2xx reply head of exactly $len bytes.
sub head_of_len {
    my $len = shift;
    my $start = "HTTP/1.1 200 Connection established\r\nX-Pad: ";
    my $pad = $len - length($start) - 4;
    return $start . ('p' x $pad) . "\r\n\r\n";
}

# Play upstream $u once: accept its connection and answer as its kind.
# Returns the accepted socket (kept open by the caller) or undef.
sub play {
    my $u = shift;
    return undef if $u->{kind} eq 'closed' || $u->{kind} eq 'full';
    my $c = accept_within($u->{sock}, 8) or return undef;
    $u->{got} = read_request_head($c);
    if ($u->{kind} eq 'r403') {
        print $c "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n"
               . "UPSTREAM!";
        close $c;
        return undef;
    }
    if ($u->{kind} eq 'garbage') {
        print $c "SSH-2.0-OpenSSH_9.2\r\n\r\n";
        close $c;
        return undef;
    }
    print $c $ok200 if $u->{kind} eq 'ok';
    print $c head_of_len($u->{len}) . 'UPSTREAM-EARLY' if $u->{kind} eq 'head';
    return $c;
}

my $target_l = listener();
my $target = '127.0.0.1:' . $target_l->sockport;

# Two upstreams in this order: A on 127.0.0.2, B on 127.0.0.3.
my @chain = (
    { desc => 'first upstream refuses the connection',
      a => refusing('127.0.0.2'), b => upstream('127.0.0.3', 'ok'),
      status => 200, b_tried => 1, upfail => '127.0.0.2', tag => 'CT00027' },
    { desc => 'first upstream refuses the tunnel (403)',
      a => upstream('127.0.0.2', 'r403'), b => upstream('127.0.0.3', 'ok'),
      status => 200, b_tried => 1, upfail => '127.0.0.2', tag => 'CT00025' },
    { desc => 'first upstream sends a malformed reply',
      a => upstream('127.0.0.2', 'garbage'),
      b => upstream('127.0.0.3', 'ok'),
      status => 200, b_tried => 1, upfail => '127.0.0.2', tag => 'CT00024' },
    { desc => 'both upstreams refuse the connection',
      a => refusing('127.0.0.2'), b => refusing('127.0.0.3'),
      status => 502, b_tried => 0, upfail => '127.0.0.3', tag => 'CT00017' },
    { desc => 'first upstream never answers (504)',
      a => upstream('127.0.0.2', 'silent'), b => upstream('127.0.0.3', 'ok'),
      status => 504, b_tried => 0, upfail => '-', tag => 'CT00023' },
    { desc => 'connecting to the first upstream times out (504)',
      a => full('127.0.0.2'), b => upstream('127.0.0.3', 'ok'),
      status => 504, b_tried => 0, upfail => '-', tag => 'CT00026' },
);

# One upstream answering a head of the given length.
my @heads = (
    { desc => 'reply head of exactly 8192 bytes', len => 8192,
      status => 200 },
    { desc => 'reply head of 8193 bytes', len => 8193, status => 502,
      tag => 'CT00024' },
    { desc => 'reply head of 20000 bytes', len => 20000, status => 502,
      tag => 'CT00024' },
);

my $conf = qq{LogFormat "cport=%{remote}p status=%>s }
         . qq{upfail=%{tunnel-upstream-failed}n \\"%r\\"" ct_chain\n}
         . qq{CustomLog "\@DIR\@/chain_log" ct_chain\n}
         . qq{LogLevel info\n};
for my $c (@chain, @heads) {
    $c->{port} = free_port();
    $c->{u} = upstream('127.0.0.2', 'head', len => $c->{len}) if $c->{len};
    my @remote = $c->{len} ? ($c->{u}) : ($c->{a}, $c->{b});
    $conf .= "Listen 127.0.0.1:$c->{port}\n"
           . "<VirtualHost 127.0.0.1:$c->{port}>\n"
           . "    ConnectTunnelConnectTimeout 2\n"
           . join('', map { "    ProxyRemote * http://$_->{addr}:$_->{port}\n" }
                          @remote)
           . "</VirtualHost>\n";
}

plan tests => 7 * @chain + 4 * @heads;

my $httpd = CT::Server->start(conf => $conf);
my $error_log = $httpd->file('error_log');

sub log_size { -s $_[0] // 0 }

sub log_text {
    my ($file, $from) = @_;
    open my $fh, '<', $file or return '';
    seek $fh, $from, 0;
    local $/;
    return <$fh> // '';
}

# The access log line of the client connection from port $cport.
sub access_line {
    my $cport = shift;
    my $line = wait_until(sub {
        my ($l) = grep { /^cport=$cport / }
                  split /\n/, log_text($httpd->file('chain_log'), 0);
        return $l;
    }, 10);
    return $line // '';
}

sub client {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 10)
        or die "connect to the standalone httpd: $!";
    $s->autoflush(1);
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    return $s;
}

for my $c (@chain) {
    my $from = log_size($error_log);
    my $s = client($c->{port});
    my $cport = $s->sockport;
    my $held_a = play($c->{a});
    my $b_conn = $c->{b_tried} ? play($c->{b}) : undef;
    my ($status, $h, $head, $rest) = read_head($s, 15);
    is($status // '', $c->{status}, "$c->{desc}: status $c->{status}");
    if ($c->{b_tried}) {
        like($c->{b}{got} // '', qr{\ACONNECT \Q$target\E HTTP/1\.1\r\n},
             "$c->{desc}: the next upstream got the CONNECT");
        my $echo = '';
        if ($b_conn) {
            print $s 'ping-up';
            my $up = read_bytes($b_conn, 7);
            print $b_conn "pong:$up";
            $echo = ($rest // '') . read_bytes($s, 12 - length($rest // ''));
        }
        is($echo, 'pong:ping-up',
           "$c->{desc}: the tunnel through the next upstream relays");
    }
    else {
        my $late = $c->{b}{kind} eq 'closed' ? undef
                 : accept_within($c->{b}{sock}, 1);
        ok(!$late, "$c->{desc}: the next upstream is not tried");
        ok(!defined $rest || $rest !~ /UPSTREAM/,
           "$c->{desc}: nothing of an upstream's reaches the client");
    }
    ok(!accept_within($target_l, 0.2),
       "$c->{desc}: the target is never dialled directly");
    like(log_text($error_log, $from), qr/$c->{tag}:/,
         "$c->{desc}: $c->{tag} logged");
    close $s;
    close $b_conn if $b_conn;
    close $held_a if $held_a;
    my $line = access_line($cport);
    like($line, qr/ status=$c->{status} /,
         "$c->{desc}: access log status");
    like($line, qr/ upfail=\Q$c->{upfail}\E /,
         "$c->{desc}: tunnel-upstream-failed is $c->{upfail}");
}

for my $c (@heads) {
    my $from = log_size($error_log);
    my $s = client($c->{port});
    my $up = play($c->{u});
    my ($status, $h, $head, $rest) = read_head($s, 15);
    is($status // '', $c->{status}, "$c->{desc}: status $c->{status}");
    if ($c->{status} == 200) {
        my $early = ($rest // '') . read_bytes($s, 14 - length($rest // ''));
        is($early, 'UPSTREAM-EARLY',
           "$c->{desc}: bytes behind the head reach the client");
        like($head // '', qr{\AHTTP/1\.1 200 Connection Established\r\n},
             "$c->{desc}: the client gets our own 200");
        ok(!accept_within($target_l, 0.2),
           "$c->{desc}: the target is never dialled directly");
    }
    else {
        my $seen = ($head // '') . ($rest // '');
        ok($seen !~ /X-Pad|pppp|UPSTREAM/,
           "$c->{desc}: none of the upstream's bytes reach the client");
        like($h ? $h->{'proxy-status'} // '' : '',
             qr/error=destination_unavailable/,
             "$c->{desc}: Proxy-Status destination_unavailable");
        like(log_text($error_log, $from), qr/$c->{tag}:/,
             "$c->{desc}: $c->{tag} logged");
    }
    close $s;
    close $up if $up;
}

$httpd->stop;
