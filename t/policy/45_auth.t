# Proxy authentication in <Proxy> (AuthType Basic, Require valid-user):
# without valid credentials a CONNECT gets 407 with a Proxy-Authenticate:
# Basic challenge (never 401 / WWW-Authenticate), and the target is not
# contacted; with Proxy-Authorization the request proceeds (200 to a local
# listener, or the module's own 502 for a port that refuses).  Credentials
# in Authorization, the header meant for origins, are ignored.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use CT::Server qw(t_path);
use CT::Origin qw(accept_within closed_port listener);
use CT::Client qw(raw_connect relays yes);
use CT::Logs qw(log_mark log_wait);

my $vhost = 'ct_policy_auth';
my ($user, $pass) = ('ct-user', 'ct-secret');

# The password file the <Proxy> section names, in {SHA} form; the
# server's children (not root) must be able to read it.
my $dir = t_path('tmp');
mkdir $dir unless -d $dir;
chmod 0755, $dir;
my $file = "$dir/policy.htpasswd";
open my $fh, '>', $file or die "write $file: $!";
print $fh "$user:{SHA}" . encode_base64(sha1($pass), '') . "\n";
close $fh or die "write $file: $!";
chmod 0644, $file;

sub basic { 'Basic ' . encode_base64(join(':', @_), '') }

# {L}: a local listener; {C}: a port that refuses.
my @cases = (
    { desc => 'no credentials', t => '127.0.0.1:{L}', want => 407 },
    { desc => 'wrong password', t => '127.0.0.1:{L}', want => 407,
      headers => 'Proxy-Authorization: ' . basic($user, 'nope') },
    { desc => 'unknown user', t => '127.0.0.1:{L}', want => 407,
      headers => 'Proxy-Authorization: ' . basic('nobody-here', $pass) },
    { desc => 'not Basic', t => '127.0.0.1:{L}', want => 407,
      headers => 'Proxy-Authorization: Bearer abc' },
    { desc => 'valid credentials in Authorization (ignored)',
      t => '127.0.0.1:{L}', want => 407,
      headers => 'Authorization: ' . basic($user, $pass) },
    { desc => 'valid Proxy-Authorization', t => '127.0.0.1:{L}', want => 200,
      headers => 'Proxy-Authorization: ' . basic($user, $pass) },
    { desc => 'valid Proxy-Authorization, refusing port',
      t => '127.0.0.1:{C}', want => 502, tag => 'CT00027',
      headers => 'Proxy-Authorization: ' . basic($user, $pass) },
);

plan tests => 4 * @cases;

my ($closed, $closed_port) = closed_port();
my $l = listener();

for my $c (@cases) {
    (my $target = $c->{t}) =~ s/\{L\}/$l->sockport/e;
    $target =~ s/\{C\}/$closed_port/;
    my $desc = "$c->{desc} ($target)";
    my $mark = log_mark();
    my ($s, $status, $h) = raw_connect($vhost, $target,
        headers => $c->{headers} ? "$c->{headers}\r\n" : '');
    $h ||= {};
    ok t_cmp($status, $c->{want}, "$desc: status");
    if ($c->{want} == 407) {
        ok t_cmp($h->{'proxy-authenticate'}, qr/^Basic realm="ct policy"/,
                 "$desc: Proxy-Authenticate: Basic");
        ok t_cmp($h->{'www-authenticate'}, undef,
                 "$desc: no WWW-Authenticate");
        ok yes(!accept_within($l, 0.1), "$desc: the target got no "
                                       . "connection");
    }
    elsif ($c->{want} == 200) {
        my $peer = accept_within($l);
        ok yes($peer, "$desc: the target got the connection");
        ok t_cmp($h->{'proxy-authenticate'}, undef,
                 "$desc: no challenge");
        ok yes(relays($s, $peer), "$desc: the tunnel carries bytes");
    }
    else {
        ok yes(log_wait($mark, qr/$c->{tag}:/),
               "$desc: proceeded to dial ($c->{tag})");
        ok t_cmp($h->{'proxy-authenticate'}, undef,
                 "$desc: no challenge");
        ok yes(!accept_within($l, 0.1), "$desc: the listener got nothing");
    }
}
