# Half-close goes through the tunnel both ways, and the other direction
# keeps working after it:
#   - the client shuts down its write side (shutdown(SHUT_WR)): the origin
#     sees the end of stream after every byte, and its reply, sent a
#     second later, still reaches the client; then the tunnel closes;
#   - the origin half-closes first: the client sees the end of stream
#     right after the origin's bytes, and data the client sends afterwards
#     still reaches the origin;
#   - a client speaking TLS to the proxy ends its side with close_notify:
#     the origin sees the end of stream and its late reply still reaches
#     the client, over TLS.
# Each tunnel that ends this way ends "closed" in its end-of-tunnel record
# (t/logs/tunnels_log), which counts the bytes, and is not reported as
# closed by the idle timeout or the maximum lifetime.
# (Without half-close, the first end of stream would end the tunnel and
# the late data would be lost: t/relay/31_nohalfclose.t.)
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(SHUT_WR);
use Digest::SHA ();
use CT::Origin ();
use CT::Client qw(open_tunnel read_to_eof write_all);
use CT::Logs qw(log_lines_since log_mark wait_tunnel_record);

plan tests => 9 + 8 + 5, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

sub sink_reply {
    my $data = shift;
    return sprintf "SINK bytes=%d sha256=%s\n", length $data,
                   Digest::SHA::sha256_hex($data);
}

# The tunnel's end-of-tunnel record (every relay writes one).
sub record_for {
    my ($mark, $port) = @_;
    return wait_tunnel_record($mark, "127.0.0.1:$port", 10) // {};
}

# Lines saying a tunnel to $port was closed by a timeout or its lifetime.
sub expired_lines {
    my ($mark, $port) = @_;
    return grep { /CT0005[02]:/ && /127\.0\.0\.1:$port\b/ }
           log_lines_since('error_log', $mark);
}

# 1. The client half-closes first.
{
    my $mark = log_mark('tunnels_log');
    my $elog = log_mark('error_log');
    my $origin = CT::Origin->start('sink', reply_delay => 1);
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client first: the tunnel is established';
    my $data = CT::Origin::Stream->new(300_000, 5)->next(300_000);
    write_all($s, $data);
    shutdown $s, SHUT_WR;
    my $rep = $origin->wait_for(1, 'eof_at', 10) // {};
    is $rep->{eof}, 1, "client first: the origin sees the client's end of stream";
    is $rep->{bytes}, length $data, 'client first: after every byte';
    my ($got, $state) = read_to_eof($s, 15, state => 1);
    is $got, sink_reply($data),
        "client first: the origin's late reply reaches the client";
    is $state, 'eof', 'client first: then the tunnel closes';
    $rep = $origin->wait_for(1, 'replied', 5) // {};
    is $rep->{replied}, 1, 'client first: the origin could send its reply';
    my $rec = record_for($mark, $origin->port);
    is $rec->{end}, 'closed', 'client first: the tunnel ended closed';
    is "up=$rec->{up} down=$rec->{down}",
        'up=' . length($data) . ' down=' . length(sink_reply($data)),
        'client first: its record counts both directions';
    my @expired = expired_lines($elog, $origin->port);
    is scalar @expired, 0,
        'client first: it is not logged as closed by a timeout or lifetime'
        or diag @expired;
    close $s;
    $origin->stop;
}

# 2. The origin half-closes first.
{
    my $mark = log_mark('tunnels_log');
    my $greeting = "HELLO FROM ORIGIN\n" x 1000;
    my $origin = CT::Origin->start('shut_first', greeting => $greeting);
    my ($s, $status, $rest) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'origin first: the tunnel is established';
    my ($got, $state) = read_to_eof($s, 10, max => 1 << 20, state => 1);
    $got = $rest . $got;
    ok $got eq $greeting, "origin first: the client gets the origin's bytes";
    is $state, 'eof', "origin first: then the origin's end of stream";
    my $late = "LATE DATA FROM THE CLIENT\n" x 2000;
    ok write_all($s, $late), 'origin first: the client can still send';
    shutdown $s, SHUT_WR;
    my $rep = $origin->wait_for(1, 'got', 10) // {};
    is $rep->{bytes}, length $late,
        "origin first: the client's late data reaches the origin";
    is $rep->{sha256}, Digest::SHA::sha256_hex($late),
        'origin first: in order';
    is $rep->{eof}, 1, "origin first: then the client's end of stream";
    is record_for($mark, $origin->port)->{end}, 'closed',
        'origin first: the tunnel ended closed';
    close $s;
    $origin->stop;
}

# 3. A TLS client half-closes with close_notify.
{
    my $origin = CT::Origin->start('sink', reply_delay => 1);
    my ($s, $status) = open_tunnel('ct_relay_tls_proxy', $origin->port,
                                   tls => 1);
    is $status, 200, 'TLS client first: the tunnel is established';
    my $data = CT::Origin::Stream->new(100_000, 6)->next(100_000);
    write_all($s, $data);
    require Net::SSLeay;
    # close_notify, without waiting for the proxy's: the read side stays.
    Net::SSLeay::shutdown($s->_get_ssl_object);
    my $rep = $origin->wait_for(1, 'eof_at', 10) // {};
    is $rep->{eof}, 1, 'TLS client first: the origin sees the end of stream';
    is $rep->{bytes}, length $data, 'TLS client first: after every byte';
    my ($got, $state) = read_to_eof($s, 15, state => 1);
    is $got, sink_reply($data),
        "TLS client first: the origin's late reply reaches the client";
    is $state, 'eof', 'TLS client first: then the tunnel closes';
    close $s;
    $origin->stop;
}
