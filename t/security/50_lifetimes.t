# How long a tunnel may live:
#   ConnectTunnelIdleTimeout 2   a tunnel that moves no bytes is closed
#       (both ends) after about 2 s, with an info line CT00050 and
#       "end=idle-timeout" in the end-of-tunnel log (ConnectTunnelLog); a
#       tunnel that moves a byte every 0.5 s outlives it and still relays
#       afterwards;
#   ConnectTunnelMaxLifetime 3   even a busy tunnel is closed after about
#       3 s, with CT00052 ("maximum lifetime of 3000 ms") and
#       "end=lifetime";
# and a tunnel that simply ends logs neither line.  Both relays are
# covered: `make test` runs the suite with reactors (the default) and
# with tunnels kept in workers.
# (ConnectTunnelConnectTimeout's 504 is in 30_proxy_status.t.)
# The three tunnels run at once, to keep the file short.  Times are
# measured from events the test itself caused, which the module's clocks
# can only see later: the idle tunnel's from just before its last bytes
# were written, the lifetime tunnel's from just before its CONNECT was
# sent.  A close must come between 0.2 s before the limit (the client's
# and origin's clocks against the module's) and 1.5 s after it (a reactor
# may be half a second late, the rest is slack for a loaded machine).
# The log lines give the time the module measured: never below the limit,
# never above what the test saw.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use Time::HiRes qw(time);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(relays tunnel_via vhost_port);
use CT::Logs qw(log_mark log_since log_wait no_crash wait_count);

plan tests => 15;

# The window around a limit that a close must fall in.
my ($EARLY, $LATE) = (0.2, 1.5);

sub in_window {
    my ($took, $limit) = @_;
    return defined $took && $took >= $limit - $EARLY
           && $took <= $limit + $LATE;
}

# The time a log line gives (the first number captured by $re) is at
# least the limit and at most what the test measured, in ms (5 ms for
# rounding and the two clocks).
sub logged_ok {
    my ($line, $re, $limit, $seen) = @_;
    my ($ms) = $line =~ $re;
    return 1 if defined $ms && defined $seen && $ms >= $limit * 1000
                && $ms <= $seen * 1000 + 5;
    t_debug('logged ' . ($ms // 'nothing') . ' ms, the test saw '
            . ($seen // 'never') . " s: $line");
    return 0;
}

my $start = log_mark();
my $l = listener(addr => '127.0.0.1', take_all => 1);
my $port = $l->sockport;

# Three tunnels to the same origin; each origin connection is told apart
# by a first line naming it.
my %t;
for my $name (qw(idle busy life)) {
    my $vhost = $name eq 'life' ? 'ct_sec_life' : 'ct_sec_idle';
    my $asked = time;
    my ($s, $status) = tunnel_via(vhost_port($vhost), "127.0.0.1:$port");
    my @got = take_accepts(5, $l);
    die "tunnel '$name' was not established ($status)"
        unless $status == 200 && @got == 1;
    my $sent = time;
    die "tunnel '$name' does not relay" unless relays($s, $got[0], $name);
    $t{$name} = { c => $s, o => $got[0], asked => $asked, sent => $sent };
}

# Run all three for at most 12 s: 'busy' and 'life' move a byte each way
# every 0.5 s, 'idle' moves nothing.  Note when each client end closes.
my $busy_for = 5;       # 2.5 times the idle timeout
my $t_begin = time;
my $next_tick = $t_begin;
my $sel = IO::Select->new(map { ($_->{c}, $_->{o}) } values %t);
my %by_sock = map { my $n = $_;
                    ($t{$n}{c} => [$n, 'c'], $t{$n}{o} => [$n, 'o']) }
              keys %t;
while (time < $t_begin + 12) {
    # After 'busy' stops sending, a second more lets its last bytes land.
    my $done = $t{idle}{closed} && $t{life}{closed}
               && time > $t_begin + $busy_for + 1;
    last if $done;
    if (time >= $next_tick) {
        for my $n (qw(busy life)) {
            next if $t{$n}{closed};
            next if $n eq 'busy' && time > $t_begin + $busy_for;
            syswrite $t{$n}{c}, 'x';
        }
        $next_tick += 0.5;
    }
    my $wait = $next_tick - time;
    $wait = 0 if $wait < 0;
    for my $sock ($sel->can_read($wait)) {
        my ($n, $end) = @{ $by_sock{$sock} };
        my $r = sysread $sock, my $buf, 4096;
        if (!$r) {
            $sel->remove($sock);
            $t{$n}{closed} //= time if $end eq 'c';
            $t{$n}{o_closed} //= time if $end eq 'o';
            next;
        }
        # The origin answers every byte, so bytes move both ways.
        syswrite $sock, $buf if $end eq 'o';
        $t{$n}{moved} += $r;
    }
}

# The idle tunnel: closed 2 s after its last bytes, both ends, logged.
{
    my $t = $t{idle};
    my $after = $t->{closed} ? $t->{closed} - $t->{sent} : undef;
    ok in_window($after, 2)
        or t_debug('idle tunnel: the client saw the close after '
                   . ($after // 'never') . ' s');
    my $o_after = $t->{o_closed} ? $t->{o_closed} - $t->{sent} : undef;
    ok in_window($o_after, 2)
        or t_debug('idle tunnel: the origin saw the close after '
                   . ($o_after // 'never') . ' s');
    my $re = qr/CT00050: tunnel from 127\.0\.0\.1 to 127\.0\.0\.1:$port closed: idle for (\d+) ms \(limit 2000 ms; /;
    my $line = log_wait($start, $re, 5, line => 1, default => '');
    ok $line ne '' or t_debug('no CT00050 line');
    ok logged_ok($line, $re, 2, $after);
    ok tunnel_end("127.0.0.1:$port", 'idle-timeout') >= 1;
}

t_debug(sprintf 'measured: idle tunnel closed %s s (client), %s s (origin) '
        . 'after its last bytes; lifetime tunnel %s s after its CONNECT',
        map { defined $_ ? sprintf('%.3f', $_) : 'never' }
        $t{idle}{closed} && $t{idle}{closed} - $t{idle}{sent},
        $t{idle}{o_closed} && $t{idle}{o_closed} - $t{idle}{sent},
        $t{life}{closed} && $t{life}{closed} - $t{life}{asked});

# The busy tunnel on the same virtual host: still open, still relays.
{
    my $t = $t{busy};
    ok !$t->{closed} && $t->{moved} >= 10
        or t_debug('busy tunnel: closed after '
                   . ($t->{closed} ? $t->{closed} - $t->{t0} : 'never')
                   . " s, moved " . ($t->{moved} // 0) . ' bytes');
    ok !$t->{closed} && relays($t->{c}, $t->{o}, 'busy-after');
    close $t->{c};
    close $t->{o};
}

# The tunnel with a maximum lifetime: busy, closed anyway, logged.
{
    my $t = $t{life};
    my $after = $t->{closed} ? $t->{closed} - $t->{asked} : undef;
    ok in_window($after, 3)
        or t_debug('lifetime tunnel closed after ' . ($after // 'never')
                   . ' s');
    ok $t->{moved} && $t->{moved} >= 4
        or t_debug('the lifetime tunnel was not busy: '
                   . ($t->{moved} // 0) . ' bytes');
    my $re = qr/CT00052: tunnel from 127\.0\.0\.1 to 127\.0\.0\.1:$port closed: maximum lifetime of 3000 ms reached after (\d+) ms /;
    my $line = log_wait($start, $re, 5, line => 1, default => '');
    ok $line ne '' or t_debug('no CT00052 line');
    ok logged_ok($line, $re, 3, $after);
    ok tunnel_end("127.0.0.1:$port", 'lifetime') >= 1;
}

# Records of the end-of-tunnel log (ConnectTunnelLog, extra.conf.in) for
# tunnels to $target that ended for that reason; it has one record per
# finished tunnel in both relays (a worker's and a reactor's).
sub tunnel_end {
    my ($target, $end) = @_;
    my $file = Apache::Test::vars('t_logs') . '/tunnels_log';
    my $deadline = time + 5;
    while (1) {
        my $n = 0;
        if (open my $fh, '<', $file) {
            $n = grep { / target=\Q$target\E .* end=\Q$end\E / } <$fh>;
        }
        return $n if $n || time > $deadline;
        select undef, undef, undef, 0.1;
    }
}

# The server survived, and a good tunnel still works.
{
    my ($s, $status) = tunnel_via(vhost_port('ct_all'), "127.0.0.1:$port");
    my @got = take_accepts(5, $l);
    ok $status == 200 && @got == 1 && relays($s, $got[0], 'last');
    close $_ for $s, @got;
    ok no_crash($start);
}

# Only the tunnels that expired say so: once all four have ended (the
# busy one and the last one closed by the client), there is one idle
# line and one lifetime line for this origin, and no other.
{
    wait_count('tunnels_log', qr/ target=127\.0\.0\.1:$port /, 4, 10);
    my $text = log_since($start);
    my $idle = () = $text =~ /CT00050: [^\n]* to 127\.0\.0\.1:$port closed/g;
    my @life = $text =~ /(CT00052: [^\n]* to 127\.0\.0\.1:$port closed[^\n]*)/g;
    ok $idle == 1 && @life == 1
        or t_debug("$idle idle line(s); lifetime lines:\n" . join "\n", @life);
}
