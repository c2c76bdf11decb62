# The idle timeout: a tunnel over which nothing moves for the timeout is
# closed, about then, and that is an ordinary event, logged at info with
# tag CT00050, not an error.  The timeout comes from the virtual host's
# Timeout (ct_relay_idle) or from ProxyTimeout (ct_relay_proxy_idle,
# whose Timeout is the server's long default).  Both are 2 s.  The tunnel
# moves one byte 1 s after it opens, then nothing: the client and the
# origin must each see the close between 1.8 s and 3.5 s after that byte
# was written (the docs allow a reactor to be half a second late; the
# rest is slack for a loaded machine), not counted from the tunnel's
# start, and CT00050 gives the idle time the module measured, which
# cannot be below the limit nor above what the client saw.  A tunnel
# that is active in one direction only - the origin trickling a byte
# every 0.5 s for 5 s, or the client doing the same - is not idle and is
# never closed by it.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time sleep);
use CT::Origin ();
use CT::Client qw(open_tunnel read_to_eof);
use CT::Logs qw(log_lines_since log_mark log_wait wait_tunnel_record);

plan tests => 2 * 10 + 8;

# The timeout, and the window around it a close must fall in.
my ($LIMIT, $EARLY, $LATE) = (2, 0.2, 1.5);

# Reads until the end of its connection, reporting (as absolute times)
# when the first byte came and when the connection ended.
sub idle_origin {
    my ($c, $report) = @_;
    my ($bytes, $end) = (0, 'eof');
    while (1) {
        my $n = sysread $c, my $buf, 4096;
        if (!defined $n) {
            next if $!{EINTR};
            $end = "error: $!";
            last;
        }
        last if $n == 0;
        $report->(got_at => sprintf '%.3f', time) unless $bytes;
        $bytes += $n;
    }
    $report->(bytes => $bytes, end => $end,
              end_at => sprintf '%.3f', time);
    close $c;
}

# A time since the last byte, checked against the window.
sub in_window {
    my ($took, $what) = @_;
    ok defined $took && $took >= $LIMIT - $EARLY && $took <= $LIMIT + $LATE,
       "$what between " . ($LIMIT - $EARLY) . ' and ' . ($LIMIT + $LATE)
       . ' s after the last byte'
        or diag 'after ' . ($took // 'never') . ' s';
}

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

# 1. Idle tunnels are closed at the timeout, counted from the last byte.
for my $vhost ('ct_relay_idle', 'ct_relay_proxy_idle') {
    my $elog = log_mark('error_log');
    my $tlog = log_mark('tunnels_log');
    my $origin = CT::Origin->start(\&idle_origin);
    my $port = $origin->port;
    my ($s, $status) = open_tunnel($vhost, $port);
    is $status, 200, "$vhost: the tunnel is established";
    my $client_port = $s->sockport;
    sleep 1;
    my $sent_at = time;
    syswrite $s, 'x';
    my ($got, $state) = read_to_eof($s, $LIMIT + 10, state => 1);
    my $took = time - $sent_at;
    is $state, 'eof', "$vhost: the idle tunnel is closed"
        or diag "after $took s: $state";
    in_window($state eq 'eof' ? $took : undef,
              "$vhost: the client sees the close");
    my $rep = $origin->wait_for(1, 'end_at', 10) // {};
    is $rep->{bytes}, 1, "$vhost: the origin got the last byte";
    is $rep->{end}, 'eof', "$vhost: the origin connection is closed too";
    in_window(defined $rep->{end_at} ? $rep->{end_at} - $sent_at : undef,
              "$vhost: the origin sees the close");

    my $line = log_wait($elog, qr/CT00050: .*127\.0\.0\.1:$port\b/, 10,
                        log => 'error_log', line => 1);
    my $want = qr/\[connect_tunnel:info\] .*CT00050: tunnel .*/
             . qr/to 127\.0\.0\.1:$port closed: idle for (\d+) ms /
             . qr/\(limit 2000 ms; /;
    like $line // '', qr/$want/,
         "$vhost: the idle close is logged at info with CT00050";
    my ($idle_ms) = ($line // '') =~ qr/$want/;
    # The module's clock starts when the byte passed it and stops before
    # the client can see the close: it measures no more than the client
    # (give or take a millisecond's rounding).
    ok defined $idle_ms && $idle_ms >= $LIMIT * 1000
       && $idle_ms <= $took * 1000 + 5,
       "$vhost: CT00050 gives the idle time measured since the last byte"
        or diag 'logged ' . ($idle_ms // 'nothing') . " ms, client saw "
                . int($took * 1000) . ' ms';
    note sprintf "$vhost: the client saw the close %.3f s, the origin %.3f s"
                 . " after the last byte; CT00050 says %s ms", $took,
                 ($rep->{end_at} // 0) - $sent_at, $idle_ms // '-';
    my @errors = grep { /:(?:error|crit|alert|emerg)\]/
                        && /127\.0\.0\.1:(?:$port|$client_port)\b/ }
                 log_lines_since('error_log', $elog);
    is scalar @errors, 0, "$vhost: and nothing about it at error level"
        or diag @errors;
    my $rec = wait_tunnel_record($tlog, "127.0.0.1:$port", 10) // {};
    is $rec->{end}, 'idle-timeout', "$vhost: its end record says idle-timeout";
    close $s;
    $origin->stop;
}

# 2. One-way streams slower than the timeout but never idle for it: the
# origin sends a byte every 0.5 s for 5 s down one tunnel while the client
# sends a byte every 0.5 s for 5 s up another, through the 2 s vhost.
{
    my $elog = log_mark('error_log');
    my $tlog = log_mark('tunnels_log');
    my $n = 10;
    my $down_origin = CT::Origin->start('source', bytes => $n, chunk => 1,
                                        interval => 0.5, seed => 51);
    my $up_origin = CT::Origin->start('sink', expect => $n);
    my ($down, $st1, $rest) = open_tunnel('ct_relay_idle', $down_origin->port);
    my ($up, $st2) = open_tunnel('ct_relay_idle', $up_origin->port);
    ok $st1 == 200 && $st2 == 200, 'trickles: both tunnels are established';

    my $want = CT::Origin::Stream->new($n, 51)->next($n);
    my $up_data = 'U' x $n;
    my ($got, $sent, $reply, $down_state) = ($rest, 0, '', 'open');
    my $next_up = time;
    my $deadline = time + 20;
    while (time < $deadline
           && ($down_state eq 'open' || $reply !~ /\n/)) {
        if ($sent < $n && time >= $next_up) {
            syswrite $up, substr($up_data, $sent++, 1);
            $next_up = time + 0.5;
        }
        my @r = IO::Select->new(grep { defined } $down, $up)->can_read(0.1);
        for my $s (@r) {
            my $k = sysread $s, my $buf, 4096;
            # $down is cleared at its end, maybe before $up's turn in the
            # same select.
            if (defined $down && $s == $down) {
                if ($k) {
                    $got .= $buf;
                }
                else {
                    $down_state = defined $k ? 'eof' : "error: $!";
                    undef $down;
                }
            }
            elsif ($k) {
                $reply .= $buf;
            }
        }
    }
    is $got, $want,
        'trickle down: every byte arrives, the tunnel stays open';
    is $down_state, 'eof', 'trickle down: it closes when the origin is done';
    like $reply, qr/^SINK bytes=$n /,
        'trickle up: every byte reaches the origin, the tunnel stays open';
    my $rep = $down_origin->wait_for(1, 'done', 5) // {};
    is $rep->{done}, 1, 'trickle down: the origin could send every byte';
    close $up;
    my %rec;
    for my $o ([down => $down_origin], [up => $up_origin]) {
        my $p = $o->[1]->port;
        $rec{ $o->[0] } = wait_tunnel_record($tlog, "127.0.0.1:$p", 10) // {};
        is $rec{ $o->[0] }->{end}, 'closed',
           "trickle $o->[0]: it ends closed, not by the idle timeout";
    }
    my $ports = join '|', $down_origin->port, $up_origin->port;
    my @expired = grep { /CT0005[02]:/ && /127\.0\.0\.1:(?:$ports)\b/ }
                  log_lines_since('error_log', $elog);
    is scalar @expired, 0,
        'neither trickle is logged as closed by a timeout or lifetime'
        or diag @expired;
    $_->stop for $down_origin, $up_origin;
}
