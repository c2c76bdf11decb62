# At hand-off the worker dup()s the client socket, the MPM closes its own
# descriptor and the reactor relays on the copy.  The MPM's close must not
# be a shutdown(): no FIN and no RST may reach the client, and the tunnel
# must go on relaying long after the handler returned.  A client that
# waits 2 s with select() after the 200 must see nothing readable, then
# its tunnel must still echo, and the logs must say which relay carried
# it: the access-log note tunnel-mode (written at hand-off, with
# tunnel-end "handed-off") and the end-of-tunnel record mode=reactor in
# the default run; mode=worker when the run keeps tunnels in workers.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Socket qw(SHUT_WR);
use CT::Raw qw(vhost_port);
use CT::Reactor qw(suite_mode start_origin tunnel echo_ok read_to_eof
                   wait_until access_lines tunnel_records mark_logs);

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

# In a reactor run the access-log line is written at hand-off; in a
# worker run only when the tunnel ends (checked below).
my $cport = $s->sockport;
SKIP: {
    if ($want ne 'reactor') {
        my @l = access_lines($cport);
        is scalar @l, 0,
           'no access-log line while the tunnel is in its worker';
        skip "no hand-off in this run ($mode relay): no tunnel-end "
             . 'handed-off to see', 1;
    }
    my ($line) = wait_until(sub { my @l = access_lines($cport); $l[0] });
    is $line && $line->{mode}, 'reactor',
       'access log at hand-off: tunnel-mode is reactor';
    is $line && $line->{end}, 'handed-off',
       'access log at hand-off: tunnel-end is handed-off';
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

my $up = length("first\n") + length($payload) + length("last\n");
my ($rec) = wait_until(sub { my @r = tunnel_records($target); $r[0] });
ok $rec && $rec->{mode} eq $want && $rec->{end} eq 'closed'
       && $rec->{up} == $up && $rec->{down} == $up,
   "tunnels_log: mode=$want end=closed up=$up down=$up"
   or diag explain $rec;
if ($want eq 'worker') {
    my ($line) = wait_until(sub { my @l = access_lines($cport); $l[0] });
    ok $line && $line->{mode} eq 'worker' && $line->{end} eq 'closed',
       'access log at the end: tunnel-mode worker, tunnel-end closed'
       or diag explain $line;
}
else {
    my @l = access_lines($cport);
    is scalar @l, 1, 'one access-log line for the handed-off tunnel';
}

$origin->stop;
