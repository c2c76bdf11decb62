# The security and limits directives are validated when the configuration
# is read: a bad network, name, time or number must stop "httpd -t" with
# a message that names the directive and the value, so that a typo never
# silently opens (or closes) destinations or leaves a limit unset.  Good
# values of each kind must pass.  Each case is a small throw-away
# configuration (no server is started).
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(config_test);

# [directive and value, what it is]
my @good = (
    [ 'ConnectTunnelDeny 10.0.0.0/8',             'an IPv4 CIDR' ],
    [ 'ConnectTunnelDeny 10.0.0.1',               'one IPv4 address' ],
    [ 'ConnectTunnelDeny 0.0.0.0/0',              'every IPv4 address' ],
    [ 'ConnectTunnelAllow 2001:db8::/32',         'an IPv6 CIDR' ],
    [ 'ConnectTunnelAllow ::1',                   'one IPv6 address' ],
    [ 'ConnectTunnelDeny ::ffff:10.0.0.0/104',    'an IPv4-mapped network' ],
    [ 'ConnectTunnelDeny 10.0.0.0/32',            'a /32' ],
    [ 'ConnectTunnelDeny fe80::/128',             'a /128' ],
    [ 'ConnectTunnelDeny example.com',            'a host name' ],
    [ 'ConnectTunnelDeny Example.COM.',           'a name with a final dot' ],
    [ 'ConnectTunnelDeny *.example.com',          'a *.domain' ],
    [ 'ConnectTunnelDeny under_score.example',    'an underscore' ],
    [ 'ConnectTunnelDeny loopback link-local private cgnat multicast '
      . 'unspecified metadata',                   'every named set' ],
    [ 'ConnectTunnelAllow LOOPBACK',              'a set in capitals' ],
    [ 'ConnectTunnelDeny 10.0.0.0/8 example.com *.example.org',
                                                  'a list of kinds' ],
    [ "<Proxy \"*\">\n    ConnectTunnelDeny 10.0.0.0/8\n"
      . "    ConnectTunnelDefaultDeny Off\n</Proxy>", 'rules in <Proxy>' ],
    [ 'ConnectTunnelDefaultDeny On',              'the guard on' ],
    [ 'ConnectTunnelDefaultDeny off',             'the guard off' ],
    [ 'ConnectTunnelConnectTimeout 2',            'seconds' ],
    [ 'ConnectTunnelConnectTimeout 500ms',        'milliseconds' ],
    [ 'ConnectTunnelSetupTimeout 15',             'a set-up timeout' ],
    [ 'ConnectTunnelSNI match',                   'an SNI mode, any case' ],
    [ 'ConnectTunnelSNITimeout 500ms',            'an SNI timeout' ],
    [ 'ConnectTunnelIdleTimeout 1mi',             'minutes' ],
    [ 'ConnectTunnelMaxLifetime 0',               'no lifetime limit' ],
    [ 'ConnectTunnelMaxLifetime 2h',              'hours' ],
    [ 'ConnectTunnelMaxTunnels 0',                'no server limit' ],
    [ 'ConnectTunnelMaxTunnels 1000000',          'the largest limit' ],
    [ 'ConnectTunnelMaxTunnelsPerChild 1',        'a child limit' ],
    [ 'ConnectTunnelMaxTunnelsPerClient 10',      'a client limit' ],
    [ 'ConnectTunnelClientPrefix 24',             'an IPv4 client prefix' ],
    [ 'ConnectTunnelClientPrefix 32 56',          'both client prefixes' ],
    [ 'ConnectTunnelClientPrefix 0 128',          'the shortest and longest' ],
    [ 'ConnectTunnelMaxTunnelsPerDestination 5',  'a destination limit' ],
    [ 'ConnectTunnelClientRate 20',               'a client rate' ],
    [ 'ConnectTunnelClientRate 0',                'no client rate' ],
    [ 'ConnectTunnelClientRate 1 1000000',        'a rate and the largest burst' ],
    [ 'ConnectTunnelDestinationRate 100 200',     'a destination rate' ],
    [ 'ConnectTunnelBandwidth 5M',                'a rate both ways' ],
    [ 'ConnectTunnelBandwidth up 64k 16k',        'a rate and burst up' ],
    [ 'ConnectTunnelBandwidth DOWN 0',            'no limit down' ],
    [ 'ConnectTunnelClientBandwidth 1G 10M',      'a client rate and burst' ],
);

# [directive and value, the value the message must quote, what it is]
my @bad = (
    [ 'ConnectTunnelDeny 10.0.0.0/33',     '10.0.0.0/33',  'IPv4 prefix > 32' ],
    [ 'ConnectTunnelDeny ::/129',          '::/129',       'IPv6 prefix > 128' ],
    [ 'ConnectTunnelDeny 10.0.0.0/',       '10.0.0.0/',    'empty prefix' ],
    [ 'ConnectTunnelDeny 10.0.0.0/-1',     '10.0.0.0/-1',  'negative prefix' ],
    [ 'ConnectTunnelDeny 10.0.0.0/08',     '10.0.0.0/08',  'prefix with a zero' ],
    [ 'ConnectTunnelDeny 10.0.0.0/8x',     '10.0.0.0/8x',  'prefix with a letter' ],
    [ 'ConnectTunnelDeny 300.0.0.1',       '300.0.0.1',    'octet > 255' ],
    [ 'ConnectTunnelDeny 10.0.0',          '10.0.0',       'three parts' ],
    [ 'ConnectTunnelDeny 127.1',           '127.1',        'short form' ],
    [ 'ConnectTunnelDeny 2130706433',      '2130706433',   'one number' ],
    [ 'ConnectTunnelDeny 0177.0.0.1',      '0177.0.0.1',   'octal part' ],
    [ 'ConnectTunnelDeny 10.0.0.1.',       '10.0.0.1.',    'address with a dot' ],
    [ 'ConnectTunnelDeny 2001:db8::g/32',  '2001:db8::g/32', 'bad IPv6' ],
    [ 'ConnectTunnelDeny fe80::1%eth0',    'fe80::1%eth0', 'zone id' ],
    [ 'ConnectTunnelDeny ::ffff:10.0.0.0/64', '::ffff:10.0.0.0/64',
      'mapped network shorter than the mapping' ],
    [ 'ConnectTunnelAllow bad!name',       'bad!name',     'a ! in a name' ],
    [ 'ConnectTunnelAllow "sp ace.example"', 'sp ace.example', 'a space' ],
    [ 'ConnectTunnelAllow *.',             '*.',           'an empty *.domain' ],
    [ 'ConnectTunnelAllow *',              '*',            'a lone star' ],
    [ 'ConnectTunnelAllow *example.com',   '*example.com', 'a star without a dot' ],
    [ 'ConnectTunnelAllow a.*.example',    'a.*.example',  'a star inside' ],
    [ 'ConnectTunnelDeny ' . ('a' x 254),  'a' x 254,      'a 254-byte name' ],
    [ 'ConnectTunnelDeny example.com/24',  'example.com/24', 'a name with a prefix' ],
    [ 'ConnectTunnelConnectTimeout 0',     '0',            'zero connect timeout' ],
    [ 'ConnectTunnelConnectTimeout -1',    '-1',           'negative time' ],
    [ 'ConnectTunnelSetupTimeout 0',       '0',            'zero set-up timeout' ],
    [ 'ConnectTunnelSetupTimeout later',   'later',        'a word for a set-up time' ],
    [ 'ConnectTunnelSNI Maybe',            'Maybe',        'an unknown SNI mode' ],
    [ 'ConnectTunnelSNITimeout 0',         '0',            'zero SNI timeout' ],
    [ 'ConnectTunnelIdleTimeout soon',     'soon',         'a word for a time' ],
    [ 'ConnectTunnelIdleTimeout 0',        '0',            'zero idle timeout' ],
    [ 'ConnectTunnelMaxLifetime 5x',       '5x',           'a bad unit' ],
    [ 'ConnectTunnelMaxTunnels -1',        '-1',           'negative limit' ],
    [ 'ConnectTunnelMaxTunnels 1000001',   '1000001',      'limit too large' ],
    [ 'ConnectTunnelMaxTunnelsPerChild ten', 'ten',        'a word for a limit' ],
    [ 'ConnectTunnelMaxTunnelsPerClient 2.5', '2.5',       'a fraction' ],
    [ 'ConnectTunnelMaxTunnelsPerClient 0x10', '0x10',     'a hex number' ],
    [ 'ConnectTunnelMaxTunnels +5',        '+5',           'a signed limit' ],
    [ 'ConnectTunnelMaxTunnels 99999999999999999999',
      '99999999999999999999',                              'a huge limit' ],
    [ 'ConnectTunnelClientPrefix 33',      '33',           'IPv4 client prefix > 32' ],
    [ 'ConnectTunnelClientPrefix 24 129',  '129',          'IPv6 client prefix > 128' ],
    [ 'ConnectTunnelClientPrefix /24',     '/24',          'a slash' ],
    [ 'ConnectTunnelClientPrefix 24 64x',  '64x',          'a letter' ],
    [ 'ConnectTunnelMaxTunnelsPerDestination -2', '-2',    'negative destination limit' ],
    [ 'ConnectTunnelClientRate 1.5',       '1.5',          'a fractional rate' ],
    [ 'ConnectTunnelClientRate 1000001',   '1000001',      'rate too large' ],
    [ 'ConnectTunnelClientRate 10 0',      '0',            'a burst of 0' ],
    [ 'ConnectTunnelDestinationRate 10 x', 'x',            'a word for a burst' ],
    [ 'ConnectTunnelBandwidth 1.5M',       '1.5M',         'a fractional rate' ],
    [ 'ConnectTunnelBandwidth 5MB',        '5MB',          'a unit after M' ],
    [ 'ConnectTunnelBandwidth sideways 5M 1M', 'sideways', 'no such direction' ],
    [ 'ConnectTunnelBandwidth up 5M 0',    '0',            'a burst of 0' ],
    [ 'ConnectTunnelClientBandwidth -1',   '-1',           'a negative rate' ],
    [ 'ConnectTunnelClientBandwidth 2000G', '2000G',       'above 1 TB/s' ],
);

# Directives of the server only, not allowed in <Proxy>.
my @server_only = qw(ConnectTunnelConnectTimeout ConnectTunnelSetupTimeout
                     ConnectTunnelIdleTimeout
                     ConnectTunnelMaxLifetime ConnectTunnelMaxTunnels
                     ConnectTunnelMaxTunnelsPerChild
                     ConnectTunnelMaxTunnelsPerClient
                     ConnectTunnelClientPrefix
                     ConnectTunnelMaxTunnelsPerDestination
                     ConnectTunnelClientRate ConnectTunnelDestinationRate
                     ConnectTunnelBandwidth ConnectTunnelClientBandwidth);

plan tests => @good + 2 * @bad + 2 + @server_only;

for (@good) {
    my ($line, $what) = @$_;
    my ($rc, $out) = config_test("$line\n", relay => 1, threads => 16);
    ok $rc == 0 && $out =~ /Syntax OK/
        or t_debug("$what: '$line' was refused: $out");
}

for (@bad) {
    my ($line, $value, $what) = @$_;
    my ($name) = $line =~ /^(\S+)/;
    my ($rc, $out) = config_test("$line\n", relay => 1, threads => 16);
    ok $rc != 0 && $out !~ /Syntax OK/
        or t_debug("$what: '$line' was accepted: $out");
    # The message names the directive and quotes the value.
    ok $out =~ /\Q$name\E: .*'\Q$value\E'/
        or t_debug("$what: message does not name $name and '$value': $out");
}

# A flag takes On or Off only.
{
    my ($rc, $out) = config_test("ConnectTunnelDefaultDeny maybe\n",
                                 relay => 1, threads => 16);
    ok $rc != 0 && $out =~ /ConnectTunnelDefaultDeny/
        or t_debug("ConnectTunnelDefaultDeny maybe: $out");
}

# A rule needs an argument.
{
    my ($rc, $out) = config_test("ConnectTunnelDeny\n",
                                 relay => 1, threads => 16);
    ok $rc != 0 && $out =~ /ConnectTunnelDeny/
        or t_debug("ConnectTunnelDeny without argument: $out");
}

for my $d (@server_only) {
    my ($rc, $out) = config_test("<Proxy \"*\">\n    $d 5\n</Proxy>\n",
                                 relay => 1, threads => 16);
    ok $rc != 0 && $out =~ /\Q$d\E/
        or t_debug("$d inside <Proxy> was accepted: $out");
}
