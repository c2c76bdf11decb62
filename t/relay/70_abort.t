# A tunnel that ends abnormally ends at once and releases what it holds:
# its end-of-tunnel record (t/logs/tunnels_log, written when the relay
# lets go of both sockets, in a worker or a reactor) appears within a
# generous 10 s with the right end reason, and the request is over (its
# access log line is written, the worker is free), not after a lingering
# close or the server's 60 s Timeout.
#   - the client resets its connection (SO_LINGER 0) while the origin is
#     streaming to it: the origin's connection is closed too;
#   - the client resets an idle tunnel;
#   - the origin resets its connection while the client is streaming up:
#     the client sees its tunnel end;
#   - a side that has already half-closed then resets, while the other
#     side is silent (the client after shutdown(SHUT_WR), or the origin
#     after its own half-close): the tunnel is dead - nothing can reach
#     the reset side any more - and must not hold its worker until the
#     idle timeout (the server's 60 s here).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER SHUT_WR);
use Time::HiRes qw(time sleep);
use CT::Origin ();
use CT::Tools qw(open_tunnel read_upto read_to_eof log_mark wait_log_line
                 wait_tunnel_record);

plan tests => 6 + 5 + 6 + 4 + 4;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

sub reset_close {
    my $s = shift;
    setsockopt $s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0);
    close $s;
}

sub marks { [log_mark('tunnel_log'), log_mark('tunnels_log')] }

# Three tests: the tunnel ends within 10 s of $t0 with end reason $end
# (undef: any), and the request has its access log line by then.
sub ends_promptly {
    my ($marks, $port, $t0, $end, $what) = @_;
    my $rec = wait_tunnel_record($marks->[1], "127.0.0.1:$port", 10);
    ok $rec, "$what: the tunnel ends within 10 s"
        or diag 'no end-of-tunnel record after ' . (time - $t0) . ' s';
    if (defined $end) {
        is $rec && $rec->{end}, $end, "$what: it ends as $end";
    }
    ok wait_log_line('tunnel_log', $marks->[0],
                     qr/"CONNECT 127\.0\.0\.1:$port HTTP\/1\.1"/,
                     $rec ? 2 : 0),
        "$what: the request is over (access log line written)";
}

# 1. The client resets while the origin streams.
{
    my $marks = marks();
    my $origin = CT::Origin->start('source', bytes => 4 << 30, seed => 71);
    my ($s, $status, $rest) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client reset while streaming: the tunnel is established';
    my ($got) = read_upto($s, (1 << 20) - length $rest, 10);
    is length($rest . $got), 1 << 20, 'the origin is streaming';
    reset_close($s);
    ends_promptly($marks, $origin->port, time, 'client-error',
                  'client reset while streaming');
    my $rep = $origin->wait_for(1, 'finished', 10) // {};
    ok $rep->{error}, "the origin's connection is closed too"
        or diag "origin sent $rep->{sent}";
    $origin->stop;
}

# 2. The client resets an idle tunnel.
{
    my $marks = marks();
    my $origin = CT::Origin->start('hold');
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client reset while idle: the tunnel is established';
    sleep 0.5;
    reset_close($s);
    ends_promptly($marks, $origin->port, time, 'client-error',
                  'client reset while idle');
    my $rep = $origin->wait_for(1, 'eof_after', 10) // {};
    ok defined $rep->{eof_after}, "the origin's connection is closed too";
    $origin->stop;
}

# 3. The origin resets while the client streams up.
{
    my $marks = marks();
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
    ok $end && $ended - ($rep->{reset_at} // 0) < 10,
        'the client sees its tunnel end within 10 s of the reset'
        or diag "client: '$end' after " . ($ended - ($rep->{reset_at} // 0));
    ends_promptly($marks, $origin->port, $rep->{reset_at} // time,
                  'origin-error', 'origin reset while streaming');
    close $s;
    $origin->stop;
}

# 4. The client half-closes, then resets; the origin stays silent.
{
    my $marks = marks();
    my $origin = CT::Origin->start(sub {
        my ($c, $report) = @_;
        my $n = sysread $c, my $buf, 65536;
        $report->(eof => defined $n && $n == 0 ? 1 : 0);
        sleep 60;     # silent, and never closes on its own
    });
    my ($s, $status) = open_tunnel('ct_all', $origin->port);
    is $status, 200, 'client half-close then reset: the tunnel is established';
    shutdown $s, SHUT_WR;
    my $rep = $origin->wait_for(1, 'eof', 10) // {};
    is $rep->{eof}, 1, "the origin sees the client's half-close";
    reset_close($s);
    ends_promptly($marks, $origin->port, time, undef,
                  'client half-close then reset');
    $origin->stop;
}

# 5. The origin half-closes, then resets; the client stays silent.
{
    my $marks = marks();
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
    my (undef, $state) = read_to_eof($s, 10);
    is $state, 'eof', "the client sees the origin's half-close";
    my $rep = $origin->wait_for(1, 'reset_at', 10) // {};
    ends_promptly($marks, $origin->port, $rep->{reset_at} // time, undef,
                  'origin half-close then reset');
    close $s;
    $origin->stop;
}
