# `SetEnv proxy-nohalfclose 1` (virtual host ct_relay_nohalfclose) turns
# half-close off, as in stock mod_proxy: the tunnel ends as soon as either
# side ends its stream.
#   - the client shuts down its write side: the origin still gets every
#     byte sent before, but its reply sent a second later is lost and the
#     client sees the tunnel close without it;
#   - the origin half-closes first: the client gets the origin's bytes and
#     the close, and what the client sends afterwards never reaches the
#     origin.
# The tunnel's end-of-tunnel record says "half-closed".  (With half-close
# on, both late transfers go through: t/relay/30_half_close.t.)
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(SHUT_WR);
use CT::Origin ();
use CT::Client qw(open_tunnel read_to_eof write_all);
use CT::Logs qw(log_mark wait_tunnel_record);

plan tests => 6 + 6;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;

sub end_of {
    my ($mark, $port) = @_;
    my $rec = wait_tunnel_record($mark, "127.0.0.1:$port", 10) // {};
    return $rec->{end} // 'no record';
}

# 1. The client half-closes first: the late reply is lost.
{
    my $mark = log_mark('tunnels_log');
    my $origin = CT::Origin->start('sink', reply_delay => 1);
    my ($s, $status) = open_tunnel('ct_relay_nohalfclose', $origin->port);
    is $status, 200, 'client first: the tunnel is established';
    my $data = 'x' x 50_000;
    write_all($s, $data);
    shutdown $s, SHUT_WR;
    my $rep = $origin->wait_for(1, 'eof_at', 10) // {};
    is $rep->{bytes}, length $data,
        'client first: the origin gets the bytes sent before the end';
    is $rep->{eof}, 1, 'client first: the origin sees the end of stream';
    my ($got, $state) = read_to_eof($s, 10, state => 1);
    is $got, '', "client first: the origin's late reply does not arrive";
    is $state, 'eof', 'client first: the tunnel closes';
    is end_of($mark, $origin->port), 'half-closed',
        'client first: the tunnel ended half-closed';
    close $s;
    $origin->stop;
}

# 2. The origin half-closes first: the client's late data is lost.
{
    my $mark = log_mark('tunnels_log');
    my $greeting = "HELLO FROM ORIGIN\n";
    my $origin = CT::Origin->start('shut_first', greeting => $greeting);
    my ($s, $status, $rest) = open_tunnel('ct_relay_nohalfclose',
                                          $origin->port);
    is $status, 200, 'origin first: the tunnel is established';
    my ($got, $state) = read_to_eof($s, 10, state => 1);
    is $rest . $got, $greeting, "origin first: the client gets the origin's bytes";
    is $state, 'eof', 'origin first: then the close';
    local $SIG{PIPE} = 'IGNORE';
    write_all($s, "LATE DATA FROM THE CLIENT\n");
    shutdown $s, SHUT_WR;
    my $rep = $origin->wait_for(1, 'got', 10) // {};
    is $rep->{bytes}, 0, "origin first: the client's late data is lost";
    ok $rep->{eof} || $rep->{error}, 'origin first: the origin is closed';
    is end_of($mark, $origin->port), 'half-closed',
        'origin first: the tunnel ended half-closed';
    close $s;
    $origin->stop;
}
