# AllowCONNECT is validated when the configuration is read: stock httpd
# accepts "0", "70000" and inverted ranges silently, so a typo opened or
# closed ports nobody meant to.  Each bad value must make "httpd -t" fail
# with a message naming the directive and the value; good values must pass.
# AllowCONNECT belongs to the server and virtual hosts only: inside
# <Proxy>, <Directory> or <Location> it is a configuration error too.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(config_test);

my @good = (
    [ '443 563',        'the default, spelt out' ],
    [ '1',              'lowest port' ],
    [ '65535',          'highest port' ],
    [ '1-65535',        'the widest range' ],
    [ '8000-8000',      'a one-port range' ],
    [ 'all',            'all' ],
    [ 'ALL',            'ALL in capitals' ],
    [ '22 443 8000-9000', 'a mixed list' ],
);

my @bad = (
    [ '70000',     'port above 65535' ],
    [ '65536',     'port 65536' ],
    [ '0',         'port 0' ],
    [ '0443',      'leading zero' ],
    [ '+443',      'signed port' ],
    [ '-443',      'range without a first port' ],
    [ '443-',      'range without a last port' ],
    [ '500-400',   'inverted range' ],
    [ '1-65536',   'range past 65535' ],
    [ '0-10',      'range from 0' ],
    [ 'foo',       'a word' ],
    [ '443,563',   'comma-separated list' ],
    [ '443 70000', 'one bad value in a list' ],
);

# Contexts where the directive is not allowed at all.
my @contexts = (
    [ qq{<Proxy "*">\n    AllowCONNECT 443\n</Proxy>},       '<Proxy>' ],
    [ qq{<ProxyMatch "^x">\n    AllowCONNECT 443\n</ProxyMatch>},
      '<ProxyMatch>' ],
    [ qq{<Directory "/">\n    AllowCONNECT 443\n</Directory>}, '<Directory>' ],
    [ qq{<Location "/">\n    AllowCONNECT 443\n</Location>},   '<Location>' ],
);

plan tests => 2 * (2 * @good) + 3 * (2 * @bad) + 2 * @contexts;

# The value in server context and in a virtual host.
sub placements {
    my $value = shift;
    return ([ "ProxyRequests On\nAllowCONNECT $value", 'server' ],
            [ "<VirtualHost 127.0.0.1:1>\n    ProxyRequests On\n"
              . "    AllowCONNECT $value\n</VirtualHost>", 'virtual host' ]);
}

for my $c (@good) {
    my ($value, $desc) = @$c;
    for my $p (placements($value)) {
        my ($rc, $out) = config_test($p->[0]);
        my $d = "AllowCONNECT $value ($desc) in $p->[1]";
        ok t_cmp($rc, 0, "$d: httpd -t succeeds");
        ok t_cmp($out, qr/Syntax OK/, "$d: Syntax OK");
    }
}

for my $c (@bad) {
    my ($value, $desc) = @$c;
    # The message names the offending value (the bad one of a list).
    my ($shown) = grep { !/^(?:443|563)$/ } split ' ', $value;
    for my $p (placements($value)) {
        my ($rc, $out) = config_test($p->[0]);
        my $d = "AllowCONNECT $value ($desc) in $p->[1]";
        ok t_cmp($rc, qr/^[1-9]\d*$/, "$d: httpd -t fails");
        ok t_cmp($out, qr/AllowCONNECT/, "$d: the message names the "
                                        . "directive");
        ok t_cmp($out, qr/\Q$shown\E/, "$d: the message names '$shown'");
    }
}

for my $c (@contexts) {
    my ($body, $desc) = @$c;
    my ($rc, $out) = config_test("ProxyRequests On\n$body");
    ok t_cmp($rc, qr/^[1-9]\d*$/, "AllowCONNECT inside $desc: httpd -t fails");
    ok t_cmp($out, qr/AllowCONNECT/,
             "AllowCONNECT inside $desc: the message names the directive");
}
