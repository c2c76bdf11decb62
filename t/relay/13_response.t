# The 2xx of ct_notes_response: ConnectTunnelResponseReason with the
# target's host, ConnectTunnelResponseHeader values evaluated after the
# connect (the address and port dialled, the client's address), a header
# whose value is empty left out, no Proxy-agent (ConnectTunnelProxyAgent
# Off); the status stays 200 and the tunnel works.  The default vhost
# still sends "Connection Established" and Proxy-agent.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use CT::Origin ();
use CT::Client qw(open_tunnel read_bytes read_to_eof);

plan tests => 9;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $o = CT::Origin->start('echo');
my $p = $o->port;
my ($s, $status, $rest, $req, $head) = open_tunnel('ct_notes_response', $p);
$head //= '';
is $status, 200, 'the status stays 200';
like $head, qr{^HTTP/1\.1 200 Tunnel to 127\.0\.0\.1 open\r\n},
    'the reason phrase is the expression\'s';
like $head, qr{\r\nX-Connected-To: 127\.0\.0\.1:$p\r\n},
    'a header with the address and port dialled';
like $head, qr{\r\nX-Client: 127\.0\.0\.1\r\n},
    'a header with the client\'s address';
unlike $head, qr{X-Empty}i, 'a header with an empty value is left out';
unlike $head, qr{Proxy-agent}i, 'no Proxy-agent';
print $s 'ping';
is $rest . read_bytes($s, 4 - length $rest), 'ping', 'the tunnel works';
shutdown $s, 1;
read_to_eof($s, 5);
close $s;

($s, $status, $rest, $req, $head) = open_tunnel('ct_notes', $p);
like $head // '', qr{^HTTP/1\.1 200 Connection Established\r\n},
    'the default reason';
like $head // '', qr{\r\nProxy-agent: \S+}, 'the default Proxy-agent';
close $s;
$o->stop;
