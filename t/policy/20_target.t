# Strict validation of the CONNECT request-target, before any DNS.  httpd's
# own parse wraps ports modulo 65536, accepts signs and leading zeros and
# lets the "this host" addresses through, so the module must answer each
# such target with 400 (and log CT00010), close the connection, and go on
# serving: a good CONNECT afterwards still works.  Some targets are already
# refused by httpd's core with 400 before the module runs; for those the
# test only checks the 400 and the close.  Hosts are loopback literals, so
# a target that slipped through could never reach another machine.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::IP;
use CT::Origin qw(accept_within listener);
use CT::Client qw(read_head read_to_eof send_raw status_of yes);
use CT::Logs qw(log_mark log_wait);

my $vhost = 'ct_policy_fwd';

# tag: 1 when httpd's core lets the target through, so the module itself
# must refuse it and log CT00010; 0 when core may refuse it first.
my @bad = (
    { t => '127.0.0.1:84537',       tag => 1, desc => 'port above 65535 '
                                                    . '(wraps to 19001)' },
    { t => '127.0.0.1:65536',       tag => 1, desc => 'port 65536 (wraps '
                                                    . 'to 0)' },
    { t => '127.0.0.1:99999999999', tag => 1, desc => 'port beyond 32 bits' },
    { t => '127.0.0.1:0',           tag => 1, desc => 'port 0' },
    { t => '127.0.0.1:+443',        tag => 1, desc => 'signed port' },
    { t => '127.0.0.1:0443',        tag => 1, desc => 'leading zero' },
    { t => '127.0.0.1:443a',        tag => 0, desc => 'trailing garbage' },
    { t => '127.0.0.1',             tag => 0, desc => 'no port' },
    { t => '127.0.0.1:',            tag => 0, desc => 'empty port' },
    { t => ':443',                  tag => 0, desc => 'empty host' },
    { t => '[::1]443',              tag => 0, desc => 'ipv6 without colon '
                                                    . 'before the port' },
    { t => '[::1%25lo]:443',        tag => 0, desc => 'ipv6 zone id' },
    { t => 'u@127.0.0.1:443',       tag => 0, desc => 'userinfo' },
    { t => 'https://127.0.0.1:443', tag => 0, desc => 'absolute form' },
    { t => '127.0.0.1:443/x',       tag => 0, desc => 'path' },
    { t => "127.0.0.1\x01:443",     tag => 0, desc => 'control byte' },
    { t => "127.0.0.1\x7f:443",     tag => 0, desc => 'DEL byte' },
    { t => "127.0.0.\xc2\xb9:443",  tag => 0, desc => 'non-ascii byte' },
    { t => '0.0.0.0:443',           tag => 1, desc => 'unspecified ipv4' },
    { t => '[::]:443',              tag => 1, desc => 'unspecified ipv6' },
    { t => '[::ffff:0.0.0.0]:443',  tag => 1, desc => 'unspecified '
                                                    . 'v4-mapped ipv6' },
    { t => '127.0.0.1.:443',        tag => 1, desc => 'ipv4 with a final '
                                                    . 'dot' },
    { t => '0.0.0.0.:443',          tag => 1, desc => 'unspecified ipv4 '
                                                    . 'with a final dot' },
    { t => '[0:0:0:0:0:0:0:0]:443', tag => 1, desc => 'unspecified ipv6, '
                                                    . 'long form' },
    { t => '[::1]:0',               tag => 1, desc => 'ipv6 with port 0' },
    { t => '[::1]:',                tag => 0, desc => 'ipv6 with an empty '
                                                    . 'port' },
    { t => '2130706433:443',        tag => 0, desc => 'ipv4 as one number' },
    { t => '0x7f.1:443',            tag => 0, desc => 'hex ipv4' },
    { t => '127.1:443',             tag => 0, desc => 'short ipv4' },
    { t => '127.0.0.01:443',        tag => 0, desc => 'ipv4 leading zero' },
);

# Targets that must be accepted ({P}: an ipv4 listener, {P6}: ipv6).
my @good = (
    { t => '127.0.0.1:{P}',          desc => 'ipv4 literal' },
    { t => 'localhost:{P}',          desc => 'name from /etc/hosts' },
    { t => '[::1]:{P6}',             desc => 'ipv6 literal' },
    { t => '[::ffff:127.0.0.1]:{P}', desc => 'v4-mapped ipv6 literal' },
);

# Each bad target: 4 checks, and the CT00010 line where the module
# itself must refuse it.
plan tests => 4 * @bad + (grep { $_->{tag} } @bad) + 2 * @good;

# A good CONNECT through the same virtual host: (status, target reached).
sub good_connect {
    my ($target, $l) = @_;
    my $s = send_raw($vhost, "CONNECT $target HTTP/1.1\r\n"
                           . "Host: $target\r\n\r\n");
    my ($status) = read_head($s);
    my $c = accept_within($l);
    return ($status // '', $c ? 1 : 0);
}

my $l = listener();
my $port = $l->sockport;

for my $c (@bad) {
    (my $shown = $c->{t}) =~ s/([^\x21-\x7e])/sprintf '\\x%02x', ord $1/ge;
    my $desc = "$c->{desc} ($shown)";
    my $mark = log_mark();
    my $s = send_raw($vhost, "CONNECT $c->{t} HTTP/1.1\r\nHost: x\r\n\r\n");
    my ($bytes, $closed) = read_to_eof($s);
    ok t_cmp(status_of($bytes), 400, "$desc: 400");
    ok yes($closed, "$desc: the connection is closed");
    if ($c->{tag}) {
        ok yes(log_wait($mark, qr/CT00010: bad CONNECT target '\Q$c->{t}\E'/),
               "$desc: CT00010 in the error log");
    }

    my ($status, $reached) = good_connect("127.0.0.1:$port", $l);
    ok t_cmp($status, 200, "$desc: a good CONNECT afterwards is a 200");
    ok yes($reached, "$desc: ... and reaches its target");
}

my $l6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                             Listen => 16, ReuseAddr => 1)
    or die "listen on [::1]: $!";
for my $c (@good) {
    my $v6 = $c->{t} =~ /\{P6\}/;
    (my $target = $c->{t}) =~ s/\{P\}/$port/;
    $target =~ s/\{P6\}/$l6->sockport/e;
    my ($status, $reached) = good_connect($target, $v6 ? $l6 : $l);
    ok t_cmp($status, 200, "$c->{desc} ($target): 200");
    ok yes($reached, "$c->{desc} ($target): the target got the connection");
}
