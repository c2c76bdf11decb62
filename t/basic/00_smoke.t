use strict;
use warnings FATAL => 'all';
use Apache::Test;
use Apache::TestRequest;
use IO::Socket::INET;

plan tests => 2;

my $cfg = Apache::Test::config();
my $port = $cfg->{vhosts}->{ct_default}->{port};
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
print $s "CONNECT example.invalid:22 HTTP/1.1\r\nHost: x\r\n\r\n";
my $line = <$s>;
ok $line =~ m{^HTTP/1\.1 403 };
$s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die $!;
print $s "CONNECT example.com:+443 HTTP/1.1\r\nHost: x\r\n\r\n";
$line = <$s>;
ok $line =~ m{^HTTP/1\.1 400 };
