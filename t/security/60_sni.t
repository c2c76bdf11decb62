# ConnectTunnelSNI: after the 200 the proxy reads the client's TLS
# ClientHello, holding its bytes, and compares its server_name with the
# CONNECT target (t/conf/sni.conf.in: one virtual host per mode).
#   - canned hellos through raw sockets: a fitting name (any case, a final
#     dot), another name, none, plain HTTP, a broken record, a hello in two
#     records sent one byte per TCP segment, a hello sent with the CONNECT
#     (before the 200), a client that sends nothing;
#   - a <Proxy> section turning the check on for a literal address, whose
#     server_name the destination rules judge as a name;
#   - real clients against the suite's TLS origin: openssl s_client with a
#     fitting and another -servername, curl sending one name to another
#     host with --connect-to, curl through the proxy spoken to over TLS.
# Each tunnel's origin is a sink that reports every byte it received: a
# refused tunnel's origin must see none, a relayed one's all, in order.
# The access log line carries the notes (tunnel-sni-check, tunnel-sni,
# tunnel-alpn, tunnel-end); a refusal logs CT00320 and counts in
# connect_tunnel_ended_total{reason="sni-refused"}.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time sleep);
use CT::Client qw(ca_file connect_tunnel http_get read_to_eof run_cmd
                  vhost_port write_all);
use CT::Origin ();
use CT::Server ();
use CT::Logs qw(log_mark log_since log_wait no_crash);
use CT::Hello qw(client_hello);

plan tests => 81;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 300;

my $start = log_mark();

############################################################################
# One tunnel through $vhost to a fresh sink origin at $host:port, $bytes
# sent as $how says: 'whole' after the 200, 'early' in the same write as
# the CONNECT, 'bytewise' one byte per TCP segment, 'silent' not at all
# (the client waits for the proxy to close).  Returns the status, whether
# the proxy closed the client's side without a reply, the origin's
# report and the access log line.

sub through {
    my ($vhost, $host, $bytes, $how) = @_;
    # The sink reports once it has every byte (or at the end of the
    # stream): the client half-closes only then, so that a tunnel that
    # passed was handed on before it saw the client's end.
    my $origin = CT::Origin->start('sink', reply => 0, limit => 30,
                                   (length $bytes
                                    ? (expect => length $bytes) : ()));
    my $target = "$host:" . $origin->port;
    my $mark = log_mark('sni_log');
    my $t = connect_tunnel($vhost, $target,
                           ($how eq 'early' ? (after => $bytes) : ()),
                           soft => 1);
    my %r = (status => $t ? $t->{status} // 0 : 0);
    if ($t && $r{status} == 200) {
        my $s = $t->{s};
        if ($how eq 'whole') {
            write_all($s, $bytes);
        }
        elsif ($how eq 'bytewise') {
            setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
            for my $i (0 .. length($bytes) - 1) {
                last unless write_all($s, substr($bytes, $i, 1));
                sleep 0.002;
            }
        }
        my $t0 = time;
        $r{origin} = $origin->wait_for(1, 'bytes', 15) // {}
            unless $how eq 'silent';
        # A relayed tunnel ends when both sides have: half-close ours.
        shutdown $s, 1 unless $how eq 'silent';
        my ($got, $ended) = read_to_eof($s, 10);
        $r{closed} = $ended;
        $r{took} = time - $t0;
        $r{reply} = ($t->{rest} // '') . ($got // '');
    }
    $r{origin} //= $origin->wait_for(1, 'bytes', 15) // {};
    $r{log} = log_wait($mark, qr/^\Q$target\E /, 10, log => 'sni_log',
                       line => 1) // '';
    $origin->stop;
    return \%r;
}

my $ok_hello = client_hello(sni => 'localhost', alpn => ['h2', 'http/1.1']);
my $evil_hello = client_hello(sni => 'evil.test', alpn => ['h2']);
my $http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

# vhost, host, bytes, how, refused, check note, description
my @cases = (
    ['ct_sni_match', 'localhost', $ok_hello, 'whole', 0, 'match',
     'Match: the target\'s name'],
    ['ct_sni_match', 'localhost', client_hello(sni => 'LocalHost.'), 'whole',
     0, 'match', 'Match: the name in another case, with a final dot'],
    ['ct_sni_match', 'localhost', $evil_hello, 'whole', 1, 'mismatch',
     'Match: another name'],
    ['ct_sni_match', 'localhost', client_hello(), 'whole', 0, 'no-sni',
     'Match: a hello without server_name'],
    ['ct_sni_match', 'localhost', $http, 'whole', 0, 'not-tls',
     'Match: plain HTTP'],
    ['ct_sni_match', 'localhost', "\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
     'whole', 1, 'invalid', 'Match: a handshake record that is no hello'],
    ['ct_sni_require', 'localhost', client_hello(sni => 'localhost',
                                                 records => 2),
     'bytewise', 0, 'match',
     'Require: the name, in two records, one byte per segment'],
    ['ct_sni_require', 'localhost', client_hello(sni => 'evil.test',
                                                 records => 2),
     'bytewise', 1, 'mismatch',
     'Require: another name, in two records, one byte per segment'],
    ['ct_sni_require', 'localhost', $ok_hello, 'early', 0, 'match',
     'Require: the hello sent with the CONNECT, before the 200'],
    ['ct_sni_require', 'localhost', $evil_hello, 'early', 1, 'mismatch',
     'Require: another name sent with the CONNECT, before the 200'],
    ['ct_sni_require', 'localhost', client_hello(), 'whole', 1, 'no-sni',
     'Require: a hello without server_name'],
    ['ct_sni_require', 'localhost', $http, 'whole', 1, 'not-tls',
     'Require: plain HTTP'],
    ['ct_sni_require', 'localhost', '', 'silent', 1, 'timeout',
     'Require: a client that sends nothing'],
    ['ct_sni_log', 'localhost', $evil_hello, 'whole', 0, 'mismatch',
     'Log: another name is recorded, not refused'],
    ['ct_sni_section', '127.0.0.1', client_hello(sni => 'www.denied.test'),
     'whole', 1, 'mismatch',
     '<Proxy> Match, literal target: a name the rules deny'],
    ['ct_sni_section', '127.0.0.1', client_hello(sni => 'other.test'),
     'whole', 0, 'match',
     '<Proxy> Match, literal target: a name the rules do not deny'],
    ['ct_sni_section', 'localhost', client_hello(sni => 'www.denied.test'),
     'whole', 0, '-', 'outside the <Proxy> section: no check'],
);

# Where a tunnel that passed is relayed: the check leaves the choice to
# the run's configuration.
my $relay = CT::Server::suite_mode() eq 'reactor' ? 'reactor' : 'worker';

for my $c (@cases) {
    my ($vhost, $host, $bytes, $how, $refused, $check, $desc) = @$c;
    my $r = through($vhost, $host, $bytes, $how);
    is $r->{status}, 200, "$desc: 200";
    my $o = $r->{origin};
    if ($refused) {
        ok $r->{closed} && ($r->{reply} // '') eq '',
            "$desc: the proxy closed the tunnel"
            or diag explain $r;
        is $o->{bytes}, 0, "$desc: the origin received nothing"
            or diag explain $o;
        like $r->{log}, qr/ check=\Q$check\E .* end=sni-refused mode=worker$/,
            "$desc: logged $check, ended sni-refused in the worker"
            or diag $r->{log};
    }
    else {
        ok $r->{closed}, "$desc: the tunnel ended when both sides had";
        is $o->{sha256}, sha256_hex($bytes),
            "$desc: the origin received every byte, in order"
            or diag explain $o;
        like $r->{log}, qr/ check=\Q$check\E .* mode=$relay$/,
            "$desc: logged $check, relayed by the $relay" or diag $r->{log};
    }
}

my $log = log_since($start);
like $log, qr/CT00320: .*refused by ConnectTunnelSNI Match: mismatch .*'evil\.test'/,
    'a refusal is logged with its tag, the mode and the name';
my $first = through('ct_sni_match', 'localhost', $ok_hello, 'whole');
like $first->{log}, qr/ sni=localhost alpn=h2,http\/1\.1 /,
    'the server_name and ALPN protocols are in the access log';

############################################################################
# Real TLS clients against the suite's TLS origin (mod_ssl, certificate
# for localhost).

SKIP: {
    skip 'no mod_ssl', 8 unless need_module('ssl');
    my $tls = vhost_port('ct_relay_tls_origin');
    my $require = '127.0.0.1:' . vhost_port('ct_sni_require');
    my $match = '127.0.0.1:' . vhost_port('ct_sni_match');

    my @s_client = ('openssl', 's_client', '-CAfile', ca_file(),
                    '-verify_return_error', '-brief');
    my $r = run_cmd(cmd => [@s_client, '-proxy', $require, '-connect',
                            "localhost:$tls", '-servername', 'localhost'],
                    stdin => "Q\n", timeout => 30);
    is $r->{rc}, 0, 's_client -servername localhost: the handshake succeeds'
        or diag $r->{err};

    my $sink = CT::Origin->start('sink', reply => 0, limit => 30);
    $r = run_cmd(cmd => [@s_client, '-proxy', $require, '-connect',
                         'localhost:' . $sink->port,
                         '-servername', 'evil.test'],
                 stdin => '', timeout => 30);
    isnt $r->{rc}, 0, 's_client -servername evil.test: no handshake';
    my $o = $sink->wait_for(1, 'bytes', 15) // {};
    is $o->{bytes}, 0, 's_client -servername evil.test: the origin saw nothing'
        or diag explain $o;
    $sink->stop;

    my @curl = ('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
                '--max-time', '20', '--cacert', ca_file());
    $r = run_cmd(cmd => [@curl, '-x', "http://$match",
                         "https://localhost:$tls/"], timeout => 30);
    like $r->{out}, qr/^[2-4]\d\d$/, 'curl to localhost: an HTTP answer'
        or diag "$r->{rc} $r->{err}";
    my $mark = log_mark('sni_log');
    $r = run_cmd(cmd => [@curl, '-k', '-x', "http://$match", '--connect-to',
                         "evil.test:443:localhost:$tls",
                         'https://evil.test/'], timeout => 30);
    isnt $r->{rc}, 0, 'curl --connect-to, server_name evil.test: refused';
    ok log_wait($mark, qr/^localhost:$tls check=mismatch sni=evil\.test .* end=sni-refused /, 10,
                log => 'sni_log', line => 1),
        'curl --connect-to: the CONNECT named localhost, the hello evil.test';

    # Through the proxy spoken to over TLS: the hello is read through
    # mod_ssl's filters.
    my @pcurl = (@curl, '--proxy-cacert', ca_file(),
                 '-x', "https://localhost:" . vhost_port('ct_sni_tls_proxy'));
    $r = run_cmd(cmd => [@pcurl, "https://localhost:$tls/"], timeout => 30);
    like $r->{out}, qr/^[2-4]\d\d$/,
        'TLS proxy, Require, curl to localhost: an HTTP answer'
        or diag "$r->{rc} $r->{err}";
    $r = run_cmd(cmd => [@pcurl, '-k', '--connect-to',
                         "evil.test:443:localhost:$tls",
                         'https://evil.test/'], timeout => 30);
    isnt $r->{rc}, 0, 'TLS proxy, Require, another name: refused';
}

############################################################################
# Counters.

my ($st, $body) = http_get(vhost_port('ct_metrics'), '/metrics');
like $body // '', qr/^connect_tunnel_ended_total\{reason="sni-refused"\} [1-9]/m,
    'refused tunnels count as ended for sni-refused';
like $body // '', qr/^connect_tunnel_sni_total\{result="mismatch"\} [1-9]/m,
    'checks count by result';
ok no_crash($start), 'no child crashed';
