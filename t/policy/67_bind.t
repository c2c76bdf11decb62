# ConnectTunnelBind: the source address (and port) of the connection to
# the origin, checked against what the origin saw.  ct_notes_bind_client
# binds to the client's own address (REMOTE_ADDR: a client on 127.0.0.3
# reaches the origin from 127.0.0.3); ct_notes_bind takes the value from
# the client's X-Bind header (a test knob): an address, an address and a
# port, an IPv6 address; one of the other family than the target is a
# 502 with CT00238, a value that is not an IP address a 500 with CT00233.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::IP;
use CT::Origin ();
use CT::Client qw(raw_connect read_bytes read_to_eof vhost_port);
use CT::Logs qw(log_mark log_wait);

plan tests => 12;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $have_v6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Listen => 1) ? 1 : 0;

# One tunnel: the origin's report of the peer, or {}.
sub tunnel {
    my ($vhost, $origin, $target, %opt) = @_;
    my ($s, $status) = raw_connect($vhost, $target, %opt);
    return ($status, {}) unless $s;
    if (($status // 0) == 200) {
        shutdown $s, 1;
        read_to_eof($s, 5);
    }
    close $s;
    return ($status, $origin->wait_for($opt{n} // 1, 'accepted', 5) // {});
}

# The client's own address, from 127.0.0.3.
{
    my $o = CT::Origin->start('echo');
    my $p = $o->port;
    my $c = IO::Socket::IP->new(LocalHost => '127.0.0.3',
                                PeerHost => '127.0.0.1',
                                PeerPort => vhost_port('ct_notes_bind_client'))
        or die "client: $@";
    print $c "CONNECT 127.0.0.1:$p HTTP/1.1\r\nHost: 127.0.0.1:$p\r\n\r\n";
    my ($status) = CT::Client::read_head($c);
    is $status, 200, 'bind to the client: established';
    shutdown $c, 1;
    read_to_eof($c, 5);
    my $r = $o->wait_for(1, 'accepted', 5) // {};
    is $r->{peer_addr}, '127.0.0.3', 'bind to the client: the origin saw it';
    $o->stop;
}

# From the header.
my $o = CT::Origin->start('echo');
my $p = $o->port;
my ($st, $r) = tunnel('ct_notes_bind', $o, "127.0.0.1:$p",
                      headers => "X-Bind: 127.0.0.5\r\n");
is "$st " . ($r->{peer_addr} // "none"), '200 127.0.0.5', 'an address: the origin saw it';

my $fixed = 40000 + $$ % 20000;
($st, $r) = tunnel('ct_notes_bind', $o, "127.0.0.1:$p", n => 2,
                   headers => "X-Bind: 127.0.0.6:$fixed\r\n");
is "$st " . ($r->{peer_addr} // "none") . ":" . ($r->{peer_port} // "none"), "200 127.0.0.6:$fixed",
    'an address and a port: the origin saw both';
$o->stop;

SKIP: {
    skip 'no ::1 on this host', 2 unless $have_v6;
    my $o6 = CT::Origin->start('echo', addr => '::1');
    my $p6 = $o6->port;
    my ($st6, $r6) = tunnel('ct_notes_bind', $o6, "[::1]:$p6",
                            headers => "X-Bind: [::1]\r\n");
    is "$st6 " . ($r6->{peer_addr} // "none"), '200 ::1', 'IPv6: the origin saw ::1';
    my $mark = log_mark('error_log');
    my ($s, $status) = raw_connect('ct_notes_bind', "127.0.0.1:$p6",
                                   headers => "X-Bind: ::1\r\n");
    close $s if $s;
    is $status, 502, 'IPv6 source, IPv4 destination: 502';
    $o6->stop;
}
my $mark = log_mark('error_log');
my ($s, $status) = raw_connect('ct_notes_bind', "127.0.0.1:$p",
                               headers => "X-Bind: ::1\r\n");
close $s if $s;
is $status, 502, 'family mismatch: 502';
ok log_wait($mark, qr/CT00238: .*no IPv6 address/, 5, log => 'error_log',
            line => 1),
    'family mismatch: logged (CT00238)';
for my $bad ('localhost', '127.0.0.1:99999', 'fe80::1%lo') {
    $mark = log_mark('error_log');
    ($s, $status) = raw_connect('ct_notes_bind', "127.0.0.1:$p",
                                headers => "X-Bind: $bad\r\n");
    close $s if $s;
    is $status, 500, "'$bad' is not a source address: 500";
}
ok log_wait($mark, qr/CT00233: /, 5, log => 'error_log', line => 1),
    'a bad source address is logged (CT00233)';
