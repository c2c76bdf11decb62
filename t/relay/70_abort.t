# A tunnel that ends abnormally ends at once, and the peers see it: each
# case asserts what the other side's socket shows within a bound (3 s,
# against the server's 60 s Timeout, which a tunnel that was not noticed
# to be dead would wait for), and then that the end-of-tunnel record
# (t/logs/tunnels_log, written when the relay lets go of both sockets, in
# a worker or a reactor) gives the right end reason.  The access log is
# no proof here: a tunnel handed to a reactor is logged at the hand-off.
#   - the client resets its connection (SO_LINGER 0) while the origin is
#     streaming to it: the origin's writes fail;
#   - the client resets an idle tunnel: the origin sees its end of stream;
#   - the origin resets its connection while the client is streaming up:
#     the client sees its tunnel end;
#   - a side that has already half-closed then resets, while the other
#     side is silent (the client after shutdown(SHUT_WR), or the origin
#     after its own half-close): the tunnel is dead - nothing can reach
#     the reset side any more - and must not hold its worker until the
#     idle timeout.  The silent side cannot see a close it has nothing
#     to read from (it already read the end of stream), so 3 s after the
#     reset it writes: the proxy must have closed its socket by then, so
#     that the first byte draws a reset and a second write fails
#     (ECONNRESET or EPIPE).  A proxy still relaying would take both
#     bytes.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER SHUT_WR);
use Time::HiRes qw(time sleep);
use CT::Origin ();
use CT::Client qw(open_tunnel read_to_eof read_upto);
use CT::Logs qw(log_mark wait_tunnel_record);

plan tests => 5 + 4 + 5 + 4 + 4;

# Seconds within which the peers must see a dead tunnel closed.
my $BOUND = 3;

# What a socket's write error looks like once the proxy closed its side.
my $CLOSED = qr/^write [12]: (?:Broken pipe|Connection reset by peer)$/;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

sub reset_close {
    my $s = shift;
    setsockopt $s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0);
    close $s;
}

sub marks { log_mark('tunnels_log') }

# The module's own account, after the peers': the tunnel's end-of-tunnel
# record, with end reason $end (undef: any).
sub record_says {
    my ($mark, $port, $end, $what) = @_;
    my $rec = wait_tunnel_record($mark, "127.0.0.1:$port", 10);
    ok $rec, "$what: its end-of-tunnel record is written";
    if (defined $end) {
        is $rec && $rec->{end}, $end, "$what: it ends as $end";
    }
}

# Write a byte, wait for an answer to come back, write another: a socket
# whose peer has closed fails by the second write; one whose peer still
# reads takes both.  Returns "ok" or "write N: error".
sub probe {
    my $s = shift;
    local $SIG{PIPE} = 'IGNORE';
    for my $i (1, 2) {
        my $n = syswrite $s, 'p';
        return "write $i: $!" unless defined $n && $n == 1;
        sleep 0.2;
    }
    return 'ok';
}

# Sleep until the absolute time $t (bounded).
sub sleep_until {
    my $left = shift() - time;
    sleep($left > 30 ? 30 : $left) if $left > 0;
}

# 1. The client resets while the origin streams.
{
    my $mark = marks();
    my $origin = CT::Origin->start('source', bytes => 4 << 30, seed => 71);
    my ($s, $status, $rest) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client reset while streaming: the tunnel is established';
    my ($got) = read_upto($s, (1 << 20) - length $rest, 10);
    is length($rest . $got), 1 << 20, 'the origin is streaming';
    my $reset_at = time;
    reset_close($s);
    my $rep = $origin->wait_for(1, 'finished', $BOUND + 10) // {};
    my $took = ($rep->{finished} // 1e10) - $reset_at;
    ok +($rep->{error} // '') =~ /^(?:Broken pipe|Connection reset by peer)$/
       && $took <= $BOUND,
       "client reset while streaming: the origin's writes fail within "
       . "$BOUND s"
        or diag "origin: error '" . ($rep->{error} // '') . "' after $took s,"
                . ' sent ' . ($rep->{sent} // '?');
    record_says($mark, $origin->port, 'client-error',
                'client reset while streaming');
    $origin->stop;
}

# 2. The client resets an idle tunnel.
{
    my $mark = marks();
    my $origin = CT::Origin->start('hold');
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client reset while idle: the tunnel is established';
    sleep 0.5;
    my $reset_at = time;
    reset_close($s);
    my $rep = $origin->wait_for(1, 'eof_after', $BOUND + 10) // {};
    my $took = defined $rep->{eof_after}
             ? $rep->{accepted} + $rep->{eof_after} - $reset_at : 1e10;
    ok $took <= $BOUND,
       "client reset while idle: the origin sees its end within $BOUND s"
        or diag "after $took s, error '" . ($rep->{error} // '') . "'";
    record_says($mark, $origin->port, 'client-error',
                'client reset while idle');
    $origin->stop;
}

# 3. The origin resets while the client streams up.
{
    my $mark = marks();
    my $origin = CT::Origin->start(sub {
        my ($c, $report) = @_;
        my $got = 0;
        while ($got < 1 << 20) {
            my $n = sysread $c, my $buf, 65536;
            last unless $n;
            $got += $n;
        }
        $report->(bytes => $got, reset_at => sprintf '%.3f', time);
        reset_close($c);
    });
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'origin reset while streaming: the tunnel is established';
    my $up = CT::Origin::Stream->new(1 << 30, 73);
    $s->blocking(0);
    local $SIG{PIPE} = 'IGNORE';
    my ($pending, $end, $deadline) = ('', '', time + 30);
    while (!$end && time < $deadline) {
        $pending = $up->next(65536) unless length $pending;
        my ($r, $w) = IO::Select->select(IO::Select->new($s),
                                         IO::Select->new($s), undef, 0.5);
        if ($r && @$r) {
            my $n = sysread $s, my $buf, 65536;
            if (!defined $n) {
                $end = "error: $!" unless $!{EAGAIN} || $!{EINTR};
            }
            elsif ($n == 0) {
                $end = 'eof';
            }
        }
        if (!$end && $w && @$w) {
            my $n = syswrite $s, $pending;
            if (defined $n) {
                substr($pending, 0, $n, '');
            }
            elsif (!$!{EAGAIN}) {
                $end = "error: $!";
            }
        }
    }
    my $ended = time;
    my $rep = $origin->wait_for(1, 'reset_at', 10) // {};
    cmp_ok $rep->{bytes} // 0, '>=', 1 << 20,
        'the origin got data, then reset';
    my $took = $ended - ($rep->{reset_at} // 0);
    ok $end && $took <= $BOUND,
        "the client sees its tunnel end within $BOUND s of the reset"
        or diag "client: '$end' after $took s";
    record_says($mark, $origin->port, 'origin-error',
                'origin reset while streaming');
    close $s;
    $origin->stop;
}

# 4. The client half-closes, then resets; the origin stays silent until
# it is told to probe its connection.
{
    my $mark = marks();
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my $origin = CT::Origin->start(sub {
        my ($c, $report) = @_;
        my $n = sysread $c, my $buf, 65536;
        $report->(eof => defined $n && $n == 0 ? 1 : 0);
        # Silent, and never closes on its own, until told to probe.
        IO::Select->new($go_r)->can_read(30) or return;
        $report->(probe => probe($c));
        sleep 60;
    });
    close $go_r;
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client half-close then reset: the tunnel is established';
    shutdown $s, SHUT_WR;
    my $rep = $origin->wait_for(1, 'eof', 10) // {};
    is $rep->{eof}, 1, "the origin sees the client's half-close";
    my $reset_at = time;
    reset_close($s);
    sleep_until($reset_at + $BOUND);
    syswrite $go_w, "go\n";
    $rep = $origin->wait_for(1, 'probe', 10) // {};
    like $rep->{probe} // '', $CLOSED,
         "client half-close then reset: the origin's connection is closed "
         . "within $BOUND s (its writes fail)";
    record_says($mark, $origin->port, undef, 'client half-close then reset');
    close $go_w;
    $origin->stop;
}

# 5. The origin half-closes, then resets; the client stays silent until
# it probes its connection.
{
    my $mark = marks();
    my $origin = CT::Origin->start(sub {
        my ($c, $report) = @_;
        shutdown $c, SHUT_WR;
        sleep 1;
        $report->(reset_at => sprintf '%.3f', time);
        reset_close($c);
        sleep 60;
    });
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'origin half-close then reset: the tunnel is established';
    my (undef, $state) = read_to_eof($s, 10, state => 1);
    is $state, 'eof', "the client sees the origin's half-close";
    my $rep = $origin->wait_for(1, 'reset_at', 10) // {};
    sleep_until(($rep->{reset_at} // time) + $BOUND);
    like probe($s), $CLOSED,
         "origin half-close then reset: the client's connection is closed "
         . "within $BOUND s (its writes fail)";
    record_says($mark, $origin->port, undef, 'origin half-close then reset');
    close $s;
    $origin->stop;
}
