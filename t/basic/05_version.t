# The module announces the package version (debian/changelog's first
# entry, its one source) in the server's banner: with ServerTokens Full,
# the test server's default, the Server header carries it.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use CT::Client qw(vhost_port);
use IO::Socket::INET;

plan tests => 2;

open my $fh, '<', "$FindBin::Bin/../../debian/changelog"
    or die "debian/changelog: $!";
my ($version) = <$fh> =~ /\(([^)]+)\)/;
ok defined $version, "debian/changelog names a version";

my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => vhost_port('ct_default'),
                              Timeout => 10) or die "connect: $!";
print $s "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
my $head = '';
while (defined(my $line = <$s>)) {
    last if $line =~ /^\r?\n$/;
    $head .= $line;
}
like $head, qr{^Server: .*\bmod_connect_tunnel/\Q$version\E\b}mi,
     "the Server header names mod_connect_tunnel/$version";
