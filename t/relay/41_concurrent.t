# Many tunnels at the same time: 120 clients each open a tunnel to one
# echo origin; only when all 120 have their 200 (so 120 tunnels are open
# at once, each holding a worker of the test server: MaxRequestWorkers
# 256, ThreadsPerChild 64) does every client send its own message, and
# each must get exactly its own message back.  Crossed tunnels, a shared
# buffer, or a relay that serialised tunnels show up as a wrong or
# missing echo.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Digest::SHA ();
use Time::HiRes qw(time);
use CT::Origin ();
use CT::Client qw(proxy_socket);

plan tests => 6;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

my $n = 120;
my $origin = CT::Origin->start('echo');
my $target = '127.0.0.1:' . $origin->port;

# Open all the tunnels.
my (@socks, %idx, %head);
for my $i (0 .. $n - 1) {
    my $s = proxy_socket('ct_all');
    syswrite $s, "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    push @socks, $s;
    $idx{ fileno $s } = $i;
    $head{$i} = '';
}

# Read every reply head, all at once.
my $sel = IO::Select->new(@socks);
my $deadline = time + 30;
my %status;
while ($sel->count && time < $deadline) {
    for my $s ($sel->can_read(1)) {
        my $i = $idx{ fileno $s };
        my $got = sysread $s, $head{$i}, 4096, length $head{$i};
        if (!$got) {
            $sel->remove($s);
            next;
        }
        if ($head{$i} =~ m{^HTTP/1\.1 (\d{3})[^\r]*\r\n.*?\r\n\r\n}s) {
            $status{$i} = $1;
            $sel->remove($s);
        }
    }
}
my @ok = grep { ($status{$_} // 0) == 200 } 0 .. $n - 1;
is scalar @ok, $n, "all $n tunnels are established at the same time";

# Each sends its own message; nothing has been echoed yet.
my %msg;
for my $i (0 .. $n - 1) {
    $msg{$i} = sprintf("tunnel %03d ", $i)
             . Digest::SHA::sha256_hex("message $i $$") x 64 . "\n";
    syswrite $socks[$i], $msg{$i};
}

my %echo = map { $_ => '' } 0 .. $n - 1;
$sel = IO::Select->new(@socks);
$deadline = time + 30;
while ($sel->count && time < $deadline) {
    for my $s ($sel->can_read(1)) {
        my $i = $idx{ fileno $s };
        my $got = sysread $s, $echo{$i}, 65536, length $echo{$i};
        $sel->remove($s) if !$got || length $echo{$i} >= length $msg{$i};
    }
}
my @right = grep { $echo{$_} eq $msg{$_} } 0 .. $n - 1;
is scalar @right, $n, "all $n clients get exactly their own message back"
    or diag 'wrong: ' . join ' ', grep { $echo{$_} ne $msg{$_} } 0 .. $n - 1;

close $_ for @socks;

# The origin saw each message once, on its own connection.
my %want = map { Digest::SHA::sha256_hex($msg{$_}) => 1 } 0 .. $n - 1;
my (%seen, $reports);
for my $conn (1 .. $n) {
    my $rep = $origin->wait_for($conn, 'sha256', 15) or next;
    $reports++;
    $seen{ $rep->{sha256} }++;
}
is $reports, $n, "the origin had $n connections";
is scalar(grep { $want{$_} } keys %seen), $n,
    'each carried one of the messages';
ok !grep({ $_ != 1 } values %seen), 'no message came twice';
is $origin->count, $n, 'and no other connection';
$origin->stop;
