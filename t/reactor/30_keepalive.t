# A CONNECT need not be the first request of its connection.  Here a GET
# for a local page comes first on a keep-alive connection to the forward
# proxy (ProxyRequests On serves local paths normally); the connection
# then sits in the MPM's keep-alive state for a second, and only then the
# CONNECT follows on the same socket.  The hand-off must work from that
# state too: the 200, a working tunnel, no FIN or RST while it idles, and
# in the default run the access log shows both requests on one client
# port, the CONNECT with tunnel-mode=reactor.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Socket qw(SHUT_WR);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok proxy_socket read_bytes read_head read_to_eof
                  vhost_port write_all);
use CT::Logs qw(access_lines mark_logs tunnel_records);

plan tests => 10;

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $mode = suite_mode();
my $want = $mode eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

my $s = proxy_socket('ct_reactor_main');
my $cport = $s->sockport;
write_all($s, "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
my ($status, $h, $head, $rest) = read_head($s);
is $status, 200, 'the GET on the proxy gets a normal 200';
my $len = $h->{'content-length'} // -1;
ok $len > 0 && lc($h->{connection} // '') ne 'close',
   'with a body length and the connection kept alive';
my $body = $rest . read_bytes($s, $len - length $rest);
is length $body, $len, 'the whole body arrives';

# In the keep-alive state for a while: nothing may come.
ok !IO::Select->new($s)->can_read(1),
   'the connection stays open and quiet in keep-alive';

write_all($s, "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n");
($status, $h, $head, $rest) = read_head($s);
is $status, 200, 'the CONNECT as second request is established';
ok echo_ok($s, "through\n"), 'the tunnel echoes';
ok !IO::Select->new($s)->can_read(1.5),
   'no FIN or RST reaches the client while the tunnel idles';
ok echo_ok($s, "still\n" x 100), 'the tunnel echoes after idling';

shutdown($s, SHUT_WR);
my ($tail, $ended) = read_to_eof($s);
close $s;

my @lines = wait_until(sub {
    my @l = access_lines($cport);
    @l == 2 && $l[1]->{status} ? \@l : undef;
});
my $l = $lines[0] // [];
like $l->[0] && $l->[0]->{request}, qr{^GET /index\.html HTTP/1\.1$},
     'access log: the GET is the first request of the connection'
     or diag explain $l;
ok $l->[1] && $l->[1]->{request} =~ /^CONNECT / && $l->[1]->{mode} eq $want,
   "access log: the CONNECT on the same connection, tunnel-mode $want"
   or diag explain $l;

$origin->stop;
