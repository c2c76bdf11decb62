# A handed-off tunnel has no worker, no Timeout on its connection and no
# mod_reqtimeout any more: the reactor itself must close tunnels that sit
# idle (ConnectTunnelIdleTimeout) and tunnels that outlive their maximum
# lifetime (ConnectTunnelMaxLifetime), and report them as the worker relay
# does: an info line in the error log (CT00050 / CT00052, naming the relay,
# the time it measured and the configured limit) and end=idle-timeout /
# end=lifetime in the end-of-tunnel record.  Three tunnels run at once:
#   idle:   idle-timeout 2 s, silent after one echo: closed 2 s after it;
#   busy:   idle-timeout 2 s, a ping every 0.5 s for 4 s: must live through
#           the pings (activity resets the timer), then close 2 s after
#           the last one;
#   life:   lifetime 3 s, a ping every 0.5 s: closed 3 s after its CONNECT
#           although never idle.
# Each close is timed by the client from something it did (sent its last
# bytes, sent the CONNECT), which the module's clocks can only see later,
# and must fall between 0.2 s before the limit and 1.5 s after it: the
# reactor sweeps its timeouts twice a second, so it may be half a second
# late (the docs say so); the rest is slack for a loaded machine.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time sleep);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_bytes tunnel vhost_port write_all);
use CT::Logs qw(log_lines mark_logs tunnel_records);

plan tests => 21;

# The window around a limit that a close must fall in.
my ($EARLY, $LATE) = (0.2, 1.5);

sub in_window {
    my ($took, $limit, $what) = @_;
    ok defined $took && $took >= $limit - $EARLY
       && $took <= $limit + $LATE,
       "$what between " . ($limit - $EARLY) . ' and ' . ($limit + $LATE)
       . ' s'
        or diag 'after ' . ($took // 'never') . ' s';
}

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 60;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

my %t = (
    idle => { vhost => 'ct_reactor_idle', ping_for => 0 },
    busy => { vhost => 'ct_reactor_idle', ping_for => 4 },
    life => { vhost => 'ct_reactor_life', ping_for => 1000 },
);
for my $name (sort keys %t) {
    $t{$name}->{asked} = time;
    my ($s, $status) = tunnel(vhost_port($t{$name}->{vhost}), $target);
    is $status, 200, "$name: tunnel established";
    $t{$name}->{sent} = time;
    ok echo_ok($s, "$name\n"), "$name: it echoes";
    $t{$name}->{s} = $s;
    $t{$name}->{pings} = 0;
}

my $t0 = time;
my $next_ping = $t0;
while (time - $t0 < 15 && grep { !defined $_->{closed} } values %t) {
    my $now = time;
    my $ping = $now >= $next_ping;
    $next_ping = $now + 0.5 if $ping;
    for my $st (values %t) {
        next if defined $st->{closed};
        my $s = $st->{s};
        if (IO::Select->new($s)->can_read(0)) {
            # Nothing is unanswered: readable means closed (EOF or RST).
            my $n = sysread($s, my $buf, 4096);
            if (!$n) {
                $st->{closed_at} = time;
                $st->{closed} = $st->{closed_at} - $t0;
                close $s;
                next;
            }
            $st->{stray} .= $buf;
        }
        if ($ping && $now - $t0 < $st->{ping_for}) {
            my $at = time;
            if (echo_ok($s, "ping\n", 2)) {
                $st->{pings}++;
                $st->{last_ping} = time - $t0;
                $st->{sent} = $at;
            }
            else {
                $st->{closed_at} = time;
                $st->{closed} = $st->{closed_at} - $t0;
                close $s;
            }
        }
    }
    sleep 0.05;
}

sub since {
    my ($st, $from) = @_;
    return defined $st->{closed_at} ? $st->{closed_at} - $st->{$from} : undef;
}
in_window(since($t{idle}, 'sent'), 2, 'idle: closed after its last bytes,');
ok $t{busy}->{pings} >= 6 && $t{busy}->{last_ping} > 3.4,
   'busy: every ping for 4 s was echoed (activity resets the idle timer)'
   or diag "pings $t{busy}->{pings}, closed at "
           . ($t{busy}->{closed} // 'never');
in_window(since($t{busy}, 'sent'), 2, 'busy: closed after its last ping,');
in_window(since($t{life}, 'asked'), 3,
          'life: closed although never idle, after its CONNECT,');
note sprintf 'measured: idle %s s, busy %s s after the last bytes, '
             . 'life %s s after its CONNECT',
     map { defined $_ ? sprintf('%.3f', $_) : 'never' }
     since($t{idle}, 'sent'), since($t{busy}, 'sent'),
     since($t{life}, 'asked');
ok $t{life}->{pings} >= 2, 'life: it echoed pings until then';
ok !grep({ $_->{stray} } values %t), 'no stray bytes on any tunnel';

# The records, by the bytes each moved ("idle\n" etc. plus the pings).
my @recs = wait_until(sub {
    my @r = tunnel_records($target);
    @r >= 3 ? \@r : undef;
});
my %by_up;
for my $r (@{ $recs[0] // [] }) {
    push @{ $by_up{ $r->{up} } }, $r;
}
for my $name (qw(idle busy life)) {
    my $up = length("$name\n") + 5 * $t{$name}->{pings};
    my $end = $name eq 'life' ? 'lifetime' : 'idle-timeout';
    my ($r) = grep { $_->{end} eq $end } @{ $by_up{$up} // [] };
    ok $r && $r->{mode} eq $want,
       "$name: tunnels_log end=$end mode=$want up=$up"
       or diag explain $recs[0];
}

my $q = quotemeta $target;
my @idle = log_lines(qr/CT00050: tunnel from 127\.0\.0\.1 to $q closed: /);
is scalar @idle, 2, 'error log: two CT00050 lines for this origin';
ok !grep({ !/idle for \d+ ms \(limit 2000 ms; \Q$want\E; / } @idle),
   "error log: they name the 2000 ms idle timeout and the $want relay"
   or diag @idle;
# The idle time measured is at least the limit and at most what the
# clients saw (5 ms for rounding and the two clocks).
my @idle_ms = sort { $a <=> $b } map { /idle for (\d+) ms/ ? $1 : () } @idle;
my @seen = sort { $a <=> $b } grep { defined }
           map { since($t{$_}, 'sent') } qw(idle busy);
ok @idle_ms == 2 && @seen == 2 && $idle_ms[0] >= 2000
   && $idle_ms[1] >= 2000 && $idle_ms[0] <= $seen[0] * 1000 + 5
   && $idle_ms[1] <= $seen[1] * 1000 + 5,
   'error log: the idle times are those measured since the last byte'
   or diag "logged @idle_ms ms, the clients saw @seen s";
my @life = log_lines(qr/CT00052: tunnel from 127\.0\.0\.1 to $q closed: /);
is scalar @life, 1, 'error log: one CT00052 line for this origin';
like $life[0] // '',
     qr/maximum lifetime of 3000 ms reached after \d+ ms \(\Q$want\E; /,
     "error log: it names the 3000 ms lifetime and the $want relay";
my ($life_ms) = ($life[0] // '') =~ /reached after (\d+) ms/;
my $life_seen = since($t{life}, 'asked');
ok defined $life_ms && defined $life_seen && $life_ms >= 3000
   && $life_ms <= $life_seen * 1000 + 5,
   'error log: the lifetime is the one measured since the tunnel opened'
   or diag 'logged ' . ($life_ms // 'nothing') . ' ms, the client saw '
           . ($life_seen // 'never') . ' s';

$origin->stop;
