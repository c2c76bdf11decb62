# ConnectTunnelSNI on CONNECT over HTTP/2 (RFC 9113, 8.5): a tunnel is a
# stream of the client's connection, its bytes read through mod_http2, so
# the check reads the ClientHello from the stream's input (polling the
# pipe mod_http2 lends for it).  A standalone httpd with mod_http2 (h2c
# with prior knowledge), ConnectTunnelSNI Require; the client is
# t/bin/h2-connect sending a canned hello as the stream's payload:
#   - a hello naming the target: the stream is answered 200 and the origin
#     (a sink) receives the hello, whole;
#   - a hello naming another host: 200, then the stream is reset with
#     nothing of it at the origin, and the tunnel ends sni-refused;
#   - both hellos sent behind the HEADERS, before the 200, likewise
#     (except that the reset may then reach the client before the 200).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use JSON::PP ();
use File::Temp ();
use Digest::SHA qw(sha256_hex);
use CT::Server qw(wait_until);
use CT::Origin ();
use CT::Hello qw(client_hello);

my $client = "$FindBin::Bin/../bin/h2-connect";
my $python = '/usr/bin/python3';

my $h2_missing = CT::Server::h2_missing();
plan skip_all => $h2_missing if $h2_missing;
plan tests => 16;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

my $httpd = CT::Server->start(
    modules => ['http2'],
    conf => <<"EOC");
Protocols h2c http/1.1
ConnectTunnelSNI Require
ConnectTunnelSNITimeout 3
EOC
my $alog = $httpd->file('access_log');

# One stream carrying $hello to an echo origin: the client's report, the
# origin's, and the access log line's end.
sub h2_hello {
    my ($name, $early) = @_;
    my $hello = client_hello(sni => $name, alpn => ['h2']);
    my $file = File::Temp->new;
    print $file $hello;
    close $file;
    my $o = CT::Origin->start('sink', reply => 0, limit => 30);
    my @cmd = ($python, $client, '--port', $httpd->port, '--target',
               "localhost:" . $o->port, '--payload', "$file",
               '--timeout', 20, ($early ? ('--early') : ()));
    open my $fh, '-|', @cmd or die "$client: $!";
    my ($r) = map { JSON::PP::decode_json($_) } grep { /^\{/ } <$fh>;
    close $fh;
    my $rep = $o->wait_for(1, 'bytes', 15) // {};
    $o->stop;
    my $line = '';
    wait_until(sub {
        open my $l, '<', $alog or return 0;
        ($line) = grep { /localhost:\Q${\ $o->port }\E/ } <$l>;
        return defined $line;
    });
    return ($r // {}, $rep, $line // '', sha256_hex($hello));
}

for my $early (0, 1) {
    my $when = $early ? 'before the 200' : 'after the 200';
    my ($r, $o, $line, $sha) = h2_hello('localhost', $early);
    is $r->{status}, 200, "h2, name of the target, $when: 200";
    ok !$r->{reset}, "h2, name of the target, $when: no reset";
    is $o->{sha256}, $sha,
        "h2, name of the target, $when: the origin got the hello whole"
        or diag explain $o;
    like $line, qr/ end=closed /,
        "h2, name of the target, $when: the tunnel ended closed"
        or diag $line;

    ($r, $o, $line, $sha) = h2_hello('evil.test', $early);
    # With the hello already there, the reset can overtake the 200's
    # HEADERS inside mod_http2: the client then sees the reset alone.
    ok !defined $r->{status} || $r->{status} == 200,
        "h2, another name, $when: 200, or the reset first";
    ok $r->{reset}, "h2, another name, $when: the stream is reset"
        or diag explain $r;
    is $o->{bytes}, 0, "h2, another name, $when: the origin got nothing"
        or diag explain $o;
    like $line, qr/ end=sni-refused /,
        "h2, another name, $when: the tunnel ended sni-refused"
        or diag $line;
}
