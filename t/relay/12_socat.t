# socat, a real client whose PROXY address sends its own CONNECT (an
# HTTP/1.0 one, without a Host header), carries 256 KiB through the tunnel
# to an echo origin and gets the same bytes back; the origin confirms it
# received them exactly once.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA ();
use CT::Origin ();
use CT::Client qw(run_cmd vhost_port);

plan tests => 6;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $origin = CT::Origin->start('echo');
my $port = $origin->port;
my $proxy_port = vhost_port('ct_all');

# Text lines, each numbered, so a diff shows where bytes went wrong.
my $data = join '', map { sprintf "line %05d %s\n", $_, 'x' x 53 }
                    1 .. 4096;

my $r = run_cmd(cmd => ['socat', '-T', '20', '-t', '5', '-',
                        "PROXY:127.0.0.1:127.0.0.1:$port,"
                        . "proxyport=$proxy_port"],
                stdin => $data, timeout => 30);
is $r->{rc}, 0, 'socat through the tunnel succeeds' or diag $r->{err};
ok !$r->{timed_out}, 'socat finishes in time' or diag 'elapsed ' . $r->{elapsed};
is length $r->{out}, length $data, 'as many bytes come back as went out';
ok $r->{out} eq $data, 'the echo is byte-exact';

my $rep = $origin->wait_for(1, 'sha256', 10);
is $rep && $rep->{bytes}, length $data, 'the origin received every byte once';
is $rep && $rep->{sha256}, Digest::SHA::sha256_hex($data),
    'the origin received the bytes in order';
$origin->stop;
