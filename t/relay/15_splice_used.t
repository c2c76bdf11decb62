# Zero copy is real: the runs that relay with splice(2) (the default one,
# in reactors, and -defines CT_WORKER, in workers) make splice calls while
# a 4 MiB tunnel transfer goes each way, and the runs that must not
# (-defines CT_COPY, reactors that copy; -defines CT_FILTER_PATH, workers
# through the filters) make none.  strace(1) watches every thread of the
# httpd child that holds the tunnel's origin socket, found through /proc,
# for the length of the transfer only; it is started and stopped here by
# its PID and bounded by timeout(1).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time sleep);
use CT::Server qw(child_for_local_port suite_mode suite_zero_copy wait_until);
use CT::Client qw(read_bytes tunnel vhost_port write_all);

my ($strace, $timeout) = map { which($_) } qw(strace timeout);
if (!$strace || !$timeout || $> != 0) {
    plan skip_all => 'needs strace, timeout and root (to trace httpd)';
}

plan tests => 7;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 90;

my $MIB4 = 4 << 20;
my $want_splice = suite_zero_copy();
my $mode = suite_mode();

# The origin: this process, one connection, 4 MiB each way.
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                              Listen => 4, ReuseAddr => 1)
    or die "listen: $!";
my ($c, $status) = tunnel(vhost_port('ct_all'), '127.0.0.1:' . $l->sockport);
is $status, 200, 'tunnel established';
my $o;
$o = $l->accept if IO::Select->new($l)->can_read(10);
ok $o, 'the origin got the connection';
$o->autoflush(1) if $o;

# The child holding the origin side: the origin's peer port is the
# child's local port.
my $pid = $o ? wait_until(sub { child_for_local_port($o->peerport) }, 5)
             : undef;
ok $pid, 'the httpd child holding the tunnel is found';

# Start strace on all of its threads and wait (bounded) until it is
# attached: TracerPid in /proc/PID/status is then non-zero.
my $out = Apache::Test::vars('t_logs') . "/splice_strace.$$";
unlink $out;
my $tracer;
if ($pid) {
    $tracer = fork // die "fork: $!";
    if ($tracer == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$out.err";
        exec $timeout, '30', $strace, '-f', '-qq', '-e', 'trace=splice',
             '-o', $out, '-p', $pid;
        POSIX::_exit(127);
    }
}
ok $tracer && wait_until(sub { tracer_of($pid) }, 10),
   'strace is attached to the child';

# The transfer: 4 MiB up, checked at the origin, then 4 MiB down.
my $block = join '', map { chr(($_ * 7) & 0xff) } 0 .. 65535;
my $data = $block x ($MIB4 / length $block);
my $up_ok = 0;
if ($o) {
    my $reader = fork // die "fork: $!";
    if ($reader == 0) {
        POSIX::_exit(read_bytes($o, $MIB4, 30) eq $data ? 0 : 1);
    }
    write_all($c, $data);
    waitpid($reader, 0);
    $up_ok = $? == 0;
}
ok $up_ok, '4 MiB reach the origin intact';
my $down_ok = 0;
if ($o) {
    my $writer = fork // die "fork: $!";
    if ($writer == 0) {
        POSIX::_exit(write_all($o, $data) ? 0 : 1);
    }
    $down_ok = read_bytes($c, $MIB4, 30) eq $data;
    waitpid($writer, 0);
}
ok $down_ok, '4 MiB reach the client intact';

# Stop strace (SIGINT makes it detach and flush) and count the calls.
my $calls = -1;
if ($tracer) {
    kill 'INT', $tracer;
    my $gone = wait_until(
        sub { waitpid($tracer, POSIX::WNOHANG()) == $tracer }, 10);
    if (!$gone) {
        kill 'KILL', $tracer;
        waitpid($tracer, 0);
    }
    $calls = 0;
    if (open my $fh, '<', $out) {
        while (<$fh>) {
            $calls++ if /\bsplice\(/;
        }
    }
    unlink $out, "$out.err";
}
close $c;
close $o if $o;

if ($want_splice) {
    cmp_ok $calls, '>', 0,
           "$mode relay with zero copy: splice(2) was called ($calls)";
}
else {
    is $calls, 0, "$mode relay without zero copy: no splice(2) call";
}

# The full path of a program on PATH, or undef.
sub which {
    my $name = shift;
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/$name" if -x "$dir/$name" && !-d "$dir/$name";
    }
    return undef;
}

# The tracer of a process, 0 when none.
sub tracer_of {
    my $p = shift;
    open my $fh, '<', "/proc/$p/status" or return 0;
    while (<$fh>) {
        return $1 if /^TracerPid:\s+(\d+)/;
    }
    return 0;
}
