# Counters survive a child's death; its live tunnels do not.  A server of
# its own (a child is killed), relaying as the suite's run says: two
# tunnels are held open, the child holding them is killed with SIGKILL,
# and the metrics handler then shows live back where it was, the two
# tunnels ended as "lost", and opened, bytes and refusals not gone down.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use JSON::PP ();
use File::Temp ();
use CT::Server qw(children_of holders wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok http_get tunnel);

plan tests => 8;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;

my $httpd = CT::Server->start(conf => <<'EOC');
<IfModule mpm_event_module>
    StartServers 1
    ServerLimit 2
    ThreadsPerChild 8
    MaxRequestWorkers 16
    MinSpareThreads 1
    MaxSpareThreads 16
</IfModule>
<Location "/metrics">
    SetHandler connect-tunnel-metrics
</Location>
EOC
my $origin = start_origin();
my $eport = $origin->port('echo');
my $echo = "127.0.0.1:$eport";
my $parser = "$FindBin::Bin/../bin/metrics-json";

sub scrape {
    my ($status, $body) = http_get($httpd->port, '/metrics');
    return {} unless ($status // 0) == 200;
    my $in = File::Temp->new;
    print $in $body;
    close $in;
    my $json = `$parser < $in`;
    return $? == 0 ? JSON::PP::decode_json($json) : {};
}

sub live {
    my $m = shift;
    return ($m->{'connect_tunnel_live{relay="worker"}'} // -1)
           + ($m->{'connect_tunnel_live{relay="reactor"}'} // -1);
}

# One refusal (nothing listens on port 25) and one finished tunnel,
# counted before the death.
my ($r) = tunnel($httpd->port, '127.0.0.1:25');
my ($done, $st0) = tunnel($httpd->port, $echo);
echo_ok($done, 'x' x 100) if $done;
close $done if $done;
wait_until(sub { live(scrape()) == 0 }, 10);
my $m0 = scrape();

my @held;
for (1 .. 2) {
    my ($s, $status) = tunnel($httpd->port, $echo);
    push @held, $s if ($status // 0) == 200 && echo_ok($s, 'ping');
}
is scalar @held, 2, 'two tunnels held open';
ok wait_until(sub { live(scrape()) == 2 }, 10), 'live shows them';
my @pids = holders($eport, children_of($httpd->pid));
is scalar @pids, 1, 'one child holds them';
kill 'KILL', @pids;
ok wait_until(sub { live(scrape()) == 0 }, 10),
   'live is back to 0 once the parent reaps the child';
my $m1 = scrape();
is $m1->{'connect_tunnel_ended_total{reason="lost"}'}
   - ($m0->{'connect_tunnel_ended_total{reason="lost"}'} // 0), 2,
   'the two tunnels ended as lost';
my @kept = ('connect_tunnel_opened_total',
            'connect_tunnel_bytes_total{direction="up"}',
            'connect_tunnel_refused_total{reason="connection_refused"}');
ok !(grep { ($m1->{$_} // -1) < ($m0->{$_} // 0) } @kept)
   && $m1->{'connect_tunnel_opened_total'} >= 3
   && $m1->{'connect_tunnel_bytes_total{direction="up"}'} >= 100
   && $m1->{'connect_tunnel_refused_total{reason="connection_refused"}'}
      == 1,
   'opened, bytes and refusals kept what the dead child counted'
   or diag explain { before => $m0, after => $m1 };
my $ended = 0;
$ended += $m1->{$_} for grep { /^connect_tunnel_ended_total\{/ } keys %$m1;
is $ended, $m1->{'connect_tunnel_opened_total'},
   'every opened tunnel has ended (live 0)';
is $m1->{'connect_tunnel_duration_seconds_count'}, $ended - 2,
   'lost tunnels have no duration';
close $_ for @held;
$httpd->stop;
