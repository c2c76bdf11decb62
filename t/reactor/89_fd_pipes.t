# A direction whose sink does not read keeps a splice pipe (two more
# descriptors) for as long as it holds bytes, so a tunnel can hold six
# descriptors, not two.  The reactors count their pipes against a budget
# (a quarter of the descriptors left after the reserve) and copy through
# a buffer past it; the tunnel cap counts two sockets a tunnel and the
# per-worker reserve six descriptors.  Standalone httpd, one child of 20
# threads, descriptor limit 640 (the module cannot raise it):
#   reserve 256 + 6 * 20 = 376, room 264: 33 pipes, (264 - 66) / 2 = 99
#   tunnels in reactors (both logged);
#   110 tunnels to an origin that, once the tunnel is checked, sends
#   400 KB and never reads again, while each client sends 300 KB and
#   never reads: both directions of every tunnel hold bytes; 99 go to
#   reactors, 11 stay in workers;
#   then the child has descriptors to spare, no EMFILE reached the error
#   log, a plain request is answered and a new tunnel echoes end to end.
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Poll qw(POLLIN POLLOUT);
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_RCVBUF IPPROTO_TCP TCP_MAXSEG);
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of fd_count suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok http_get tunnel);
use CT::Logs qw(log_lines status_auto);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no reactor pipes'
    if suite_mode() ne 'reactor';
plan tests => 9, need_module('status');

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 120;

my $NOFILE = 640;
my $TUNNELS = 110;
my $UP = 300 * 1024;
my $DOWN = 400 * 1024;
my $port;    # the standalone server's

# A small receive window and segment size, set before connect() or on a
# listener (accepted sockets inherit them): the proxy's socket to such a
# peer starts with a send buffer sized from the segment size (on loopback
# the segments are 64 KB and the buffer megabytes), so what the peer does
# not read stays in the proxy's pipes rather than in the kernel's buffers.
sub small_window {
    my $s = shift;
    return setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096)
           && setsockopt($s, IPPROTO_TCP, TCP_MAXSEG, 1024);
}

# An origin that answers "go\n" with "ok\n", then sends $DOWN bytes and
# never reads again.  A forked poll loop, ended by its PID.
sub start_mute_origin {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1024, ReuseAddr => 1)
        or die "listen: $!";
    small_window($l) or die "small window: $!";
    my $port = $l->sockport;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        my (%c, @keep);
        $l->blocking(0);
        my $until = time + 110;
        while (time < $until) {
            my $poll = IO::Poll->new;
            $poll->mask($l => POLLIN);
            for my $st (values %c) {
                $poll->mask($st->{s} => $st->{phase} eq 'wait' ? POLLIN
                                                               : POLLOUT);
            }
            $poll->poll(0.2);
            while (my $s = $l->accept) {
                $s->blocking(0);
                $c{fileno $s} = { s => $s, phase => 'wait', in => '',
                                  left => $DOWN };
            }
            for my $st (values %c) {
                my $ev = $poll->events($st->{s}) or next;
                if ($st->{phase} eq 'wait') {
                    my $n = sysread($st->{s}, $st->{in}, 16,
                                    length $st->{in});
                    next unless $n && $st->{in} =~ /go\n/;
                    syswrite($st->{s}, "ok\n");
                    $st->{phase} = 'flood';
                }
                my $w = syswrite($st->{s}, 'x' x 65536);
                $st->{left} -= $w if $w;
                if ($st->{left} <= 0) {
                    # Done: keep the socket open, unread, off the poll.
                    push @keep, delete $c{fileno $st->{s}};
                }
            }
        }
        POSIX::_exit(0);
    }
    close $l;
    return ($pid, $port);
}

# A tunnel through the proxy from a client with a small receive window.
sub small_tunnel {
    my ($target) = @_;
    socket(my $s, Socket::PF_INET(), Socket::SOCK_STREAM(), 0) or return;
    small_window($s) or return;
    connect($s, Socket::pack_sockaddr_in($port,
                                         Socket::inet_aton('127.0.0.1')))
        or return;
    CT::Client::write_all($s, "CONNECT $target HTTP/1.1\r\n"
                               . "Host: $target\r\n\r\n") or return;
    my ($status) = CT::Client::read_head($s, 5);
    return ($s, $status);
}

# Pipes among a process's descriptors.
sub pipe_count {
    my $pid = shift;
    opendir my $d, "/proc/$pid/fd" or return 0;
    return scalar grep {
        (readlink("/proc/$pid/fd/$_") // '') =~ /^pipe:/
    } readdir $d;
}

# Send up to $UP bytes without ever blocking or reading.
sub flood {
    my $s = shift;
    $s->blocking(0);
    my ($sent, $stuck) = (0, 0);
    my $deadline = time + 2;
    while ($sent < $UP && time < $deadline) {
        my $w = syswrite($s, 'y' x 65536);
        if (defined $w) {
            $sent += $w;
            next;
        }
        last unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        last if ++$stuck > 20;
        sleep 0.01;
    }
    return $sent;
}

my ($mute_pid, $mute_port) = start_mute_origin();
my $mute = "127.0.0.1:$mute_port";
my $origin = start_origin();
my $echo = '127.0.0.1:' . $origin->port('echo');

my $httpd = CT::Server->start(
    modules => ['status'], nofile => $NOFILE, conf => <<'EOC');
LogLevel info connect_tunnel:debug
StartServers 1
ServerLimit 1
ThreadsPerChild 20
MaxRequestWorkers 20
MinSpareThreads 1
MaxSpareThreads 20
<Location "/server-status">
    SetHandler server-status
</Location>
EOC
$port = $httpd->port;
my $elog = $httpd->file('error_log');

my $cap = wait_until(sub { (log_lines(qr/CT00074: /, $elog))[0] }, 5) // '';
like $cap, qr/up to 99 tunnels per child \(descriptor limit $NOFILE\)/,
     'the child derives a cap of (640 - 376 - 66) / 2 = 99 tunnels';
my $pipes = wait_until(sub { (log_lines(qr/CT00151: /, $elog))[0] }, 5)
            // '';
like $pipes, qr/up to 33 splice pipes per child/,
     'and a budget of 264 / 8 = 33 pipes';

my (@s, $flooded);
for (1 .. $TUNNELS) {
    my ($s, $status) = small_tunnel($mute);
    last unless ($status // 0) == 200;
    CT::Client::write_all($s, "go\n") or last;
    last unless CT::Client::read_bytes($s, 3, 5) eq "ok\n";
    push @s, $s;
    $flooded++ if flood($s) >= 128 * 1024;
}
is scalar @s, $TUNNELS,
   "$TUNNELS tunnels whose client and origin never read";
ok $flooded && $flooded == $TUNNELS,
   'every client sent at least 128 KB that nobody reads';
my %st;
wait_until(sub {
    %st = status_auto($port);
    ($st{ConnectTunnelsLive} // 0) == $TUNNELS;
}, 5);
is $st{ConnectTunnelsInReactors}, 99, '99 of them in reactors (the cap)';

my ($child) = children_of($httpd->pid);
my $fds = $child ? fd_count($child) : $NOFILE;
diag "the child holds $fds descriptors, " . pipe_count($child)
     . ' of them pipe ends' if $child;
cmp_ok $fds, '<', $NOFILE - 64,
       "the child holds $fds descriptors, well under $NOFILE";
my ($code) = http_get($port, '/nothing');
ok defined $code, 'a plain request is answered';
my ($new, $status) = tunnel($port, $echo, wait => 10);
ok $new && $status == 200 && echo_ok($new, "still here\n", 5),
   'a new tunnel echoes end to end';
close $new if $new;
my @emfile = log_lines(qr/Too many open files|EMFILE/, $elog);
is scalar @emfile, 0, 'no EMFILE in the error log'
    or diag $emfile[0];
close $_ for @s;
$httpd->stop;
kill 'TERM', $mute_pid;
waitpid $mute_pid, 0;
$origin->stop;
