# A handed-off tunnel has no worker, no Timeout on its connection and no
# mod_reqtimeout any more: the reactor itself must close tunnels that sit
# idle (ConnectTunnelIdleTimeout) and tunnels that outlive their maximum
# lifetime (ConnectTunnelMaxLifetime), and report them as the worker relay
# does: an info line in the error log (CT00050 / CT00052, naming the relay
# and the configured limit) and end=idle-timeout / end=lifetime in the
# end-of-tunnel record.  Three tunnels run at once:
#   idle:   idle-timeout 2 s, silent after one echo: closed in bounded time;
#   busy:   idle-timeout 2 s, a ping every 0.5 s for 4 s: must live through
#           the pings (activity resets the timer), then close once silent;
#   life:   lifetime 3 s, a ping every 0.5 s: closed although never idle.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time sleep);
use CT::Raw qw(vhost_port read_bytes);
use CT::Reactor qw(suite_mode start_origin tunnel write_all echo_ok
                   wait_until tunnel_records log_lines mark_logs);

plan tests => 19;

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
    my ($s, $status) = tunnel(vhost_port($t{$name}->{vhost}), $target);
    is $status, 200, "$name: tunnel established";
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
                $st->{closed} = time - $t0;
                close $s;
                next;
            }
            $st->{stray} .= $buf;
        }
        if ($ping && $now - $t0 < $st->{ping_for}) {
            if (echo_ok($s, "ping\n", 2)) {
                $st->{pings}++;
                $st->{last_ping} = time - $t0;
            }
            else {
                $st->{closed} = time - $t0;
                close $s;
            }
        }
    }
    sleep 0.05;
}

ok defined $t{idle}->{closed} && $t{idle}->{closed} <= 10,
   'idle: closed within 10 s of silence'
   or diag explain $t{idle}->{closed};
ok $t{busy}->{pings} >= 6 && $t{busy}->{last_ping} > 3.4,
   'busy: every ping for 4 s was echoed (activity resets the idle timer)'
   or diag "pings $t{busy}->{pings}, closed at "
           . ($t{busy}->{closed} // 'never');
ok defined $t{busy}->{closed} && $t{busy}->{closed} <= 4 + 10,
   'busy: closed within 10 s once silent';
ok defined $t{life}->{closed} && $t{life}->{closed} <= 10,
   'life: closed within 10 s although never idle'
   or diag explain $t{life};
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
ok !grep({ !/idle for 2000 ms \(\Q$want\E; / } @idle),
   "error log: they name the 2000 ms idle timeout and the $want relay"
   or diag @idle;
my @life = log_lines(qr/CT00052: tunnel from 127\.0\.0\.1 to $q closed: /);
is scalar @life, 1, 'error log: one CT00052 line for this origin';
like $life[0] // '', qr/maximum lifetime of 3000 ms reached \(\Q$want\E; /,
     "error log: it names the 3000 ms lifetime and the $want relay";

$origin->stop;
