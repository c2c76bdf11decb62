# openssl s_client, a real TLS client with its own proxy support
# (-proxy), reaches the TLS origin through the tunnel and receives the
# origin's own certificate: the one in the test CA's server.crt, verified
# against the test CA.  A relay that altered, reordered or answered bytes
# itself would break the handshake or show another certificate.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use CT::Client qw(ca_file run_cmd server_cert_file vhost_port);
use CT::Logs qw(log_mark log_wait);

plan tests => 6, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

sub pem_blocks {
    my $text = shift;
    my @pem = $text =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/gs;
    s/\s+//g for @pem;
    return @pem;
}

my $tls_port = vhost_port('ct_relay_tls_origin');
my $proxy = '127.0.0.1:' . vhost_port('ct_all');
my $mark = log_mark('tunnel_log');
my $r = run_cmd(cmd => ['openssl', 's_client', '-proxy', $proxy,
                        '-connect', "localhost:$tls_port",
                        '-servername', 'localhost',
                        '-CAfile', ca_file(), '-verify_return_error',
                        '-showcerts'],
                stdin => "", timeout => 30);

is $r->{rc}, 0, 's_client through the tunnel succeeds' or diag $r->{err};
ok !$r->{timed_out}, 's_client finishes in time' or diag 'elapsed ' . $r->{elapsed};
like $r->{out}, qr/Verify return code: 0 \(ok\)/,
    "the origin's chain verifies against the test CA";

open my $fh, '<', server_cert_file() or die server_cert_file() . ": $!";
my ($want) = pem_blocks(do { local $/; <$fh> });
my ($got) = pem_blocks($r->{out});
ok defined $want, 'the test CA has a server certificate';
is $got, $want, "s_client received the origin's certificate, unchanged";

ok log_wait($mark, qr/"CONNECT localhost:$tls_port HTTP\/1\.[01]" 200 /, 10,
            log => 'tunnel_log', line => 1),
    'the proxy logged the CONNECT with a 200';
