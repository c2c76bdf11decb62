# At hand-off the worker dup()s the client socket, the MPM closes its own
# descriptor and the reactor relays on the copy.  The MPM's close must not
# be a shutdown(): no FIN and no RST may reach the client, and the tunnel
# must go on relaying long after the handler returned.  A client that
# waits 2 s with select() after the 200 must see nothing readable, then
# its tunnel must still echo, and the logs must say which relay carried
# it: the access-log note tunnel-mode (the line is written when the
# tunnel ends, in either relay, as stock writes it) and the end-of-tunnel
# record mode=reactor in the default run; mode=worker when the run keeps
# tunnels in workers.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Socket qw(SHUT_WR);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_to_eof tunnel vhost_port);
use CT::Logs qw(access_lines mark_logs tunnel_records);

plan tests => 11;

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $mode = suite_mode();
my $want = $mode eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');
my $proxy = vhost_port('ct_reactor_main');

my ($s, $status, $rest) = tunnel($proxy, $target);
is $status, 200, 'CONNECT to the echo origin is established';
is $rest, '', 'nothing follows the 200 before the client sends';
ok echo_ok($s, "first\n"), 'the tunnel echoes right after the 200';

# The access-log line is written only when the tunnel ends (checked
# below), whichever relay carries it.
my $cport = $s->sockport;
{
    my @l = access_lines($cport);
    is scalar @l, 0, "no access-log line while the tunnel runs ($want)";
    ok echo_ok($s, "still\n"), 'the tunnel is still open';
}

# Nothing may arrive: a FIN or an RST would make the socket readable.
my $sel = IO::Select->new($s);
my @ready = $sel->can_read(2);
ok !@ready, 'no FIN, RST or data reaches the client in 2 s after hand-off';

my $payload = join '', map { "line $_\n" } 1 .. 500;
ok echo_ok($s, $payload), 'the tunnel still echoes after 2 s';
ok echo_ok($s, "last\n"), 'and again';

shutdown($s, SHUT_WR);
my ($tail, $ended) = read_to_eof($s);
ok $ended && $tail eq '', 'the tunnel ends cleanly after the half-close';
close $s;

my $up = length("first\n") + length("still\n") + length($payload)
         + length("last\n");
my ($rec) = wait_until(sub { my @r = tunnel_records($target); $r[0] });
ok $rec && $rec->{mode} eq $want && $rec->{end} eq 'closed'
       && $rec->{up} == $up && $rec->{down} == $up,
   "tunnels_log: mode=$want end=closed up=$up down=$up"
   or diag explain $rec;
{
    my ($line) = wait_until(sub { my @l = access_lines($cport); $l[0] });
    ok $line && $line->{mode} eq $want && $line->{end} eq 'closed'
       && scalar(access_lines($cport)) == 1,
       "one access-log line at the end: tunnel-mode $want, tunnel-end "
       . 'closed' or diag explain $line;
}

$origin->stop;
