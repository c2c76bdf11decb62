# curl, a real client, fetches a file from a TLS origin through the tunnel
# and gets it byte for byte: once with the proxy spoken to in plain HTTP
# (-x http://...) and once with the proxy itself spoken to over TLS
# (--proxy https://...), where the relay reads and writes the client
# through mod_ssl's filters.  The origin is the test server's own mod_ssl
# virtual host (ct_relay_tls_origin) with the test CA's certificate, so
# curl verifies the origin (and the TLS proxy) end to end.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA ();
use CT::Origin ();
use CT::Client qw(ca_file run_cmd vhost_port);
use CT::Logs qw(log_mark log_wait wait_tunnel_record);

plan tests => 12, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 150;

my $size = 8 << 20;
my $name = "ct_relay_curl_$$.bin";
my $file = Apache::Test::vars('documentroot') . "/$name";
{
    my $st = CT::Origin::Stream->new($size, 7);
    open my $fh, '>', $file or die "$file: $!";
    binmode $fh;
    print $fh $st->next(1 << 20) until $st->done;
    close $fh or die "$file: $!";
    chmod 0644, $file;
}
END { unlink $file if defined $file }
my $want = CT::Origin::Stream->digest_of($size, 7);

my $tls_port = vhost_port('ct_relay_tls_origin');
my $url = "https://localhost:$tls_port/$name";
my $ca = ca_file();

my %via = (
    'plain proxy' => ['-x', 'http://127.0.0.1:' . vhost_port('ct_all')],
    'TLS proxy'   => ['--proxy', 'https://localhost:'
                                 . vhost_port('ct_relay_tls_proxy'),
                      '--proxy-cacert', $ca],
);

for my $how ('plain proxy', 'TLS proxy') {
    my $mark = log_mark('tunnel_log');
    my $tmark = log_mark('tunnels_log');
    my $r = run_cmd(cmd => ['curl', '-sS', '--max-time', '60',
                            '--cacert', $ca, @{ $via{$how} }, $url],
                    timeout => 70);
    is $r->{rc}, 0, "$how: curl succeeds" or diag $r->{err};
    ok !$r->{timed_out}, "$how: curl finishes in time";
    is length $r->{out}, $size, "$how: all $size bytes arrive";
    is Digest::SHA::sha256_hex($r->{out}), $want,
        "$how: the content is byte-exact";
    # The bytes really went through a CONNECT tunnel of this proxy.
    my $line = log_wait($mark,
                        qr/"CONNECT localhost:$tls_port HTTP\/1\.1" 200 /,
                        10, log => 'tunnel_log', line => 1);
    ok $line, "$how: the proxy logged the CONNECT with a 200";
    my $rec = wait_tunnel_record($tmark, "localhost:$tls_port", 10) // {};
    cmp_ok $rec->{down} // 0, '>', $size,
        "$how: the tunnel carried more than the file down";
}
