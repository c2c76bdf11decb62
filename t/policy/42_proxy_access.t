# <Proxy> and <ProxyMatch> access control applies to CONNECT: a denied
# request is a 403 from httpd's authorization, the module never runs (no
# CT tag, no dial) and the target gets no connection.  The same target is
# reachable where nothing denies it, and a client outside "Require ip" is
# refused too.
#
# The sections see the canonical target (ct_policy_canon): a section for
# "localhost:*" also catches LOCALHOST and localhost., one for 127.0.0.2
# the IPv4-mapped, IPv4-compatible and NAT64 spellings of it, and rules
# placed in a section apply to every spelling of its target.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::INET;
use CT::Origin qw(accept_within listener);
use CT::Client qw(read_head relays vhost_port yes);
use CT::Logs qw(log_mark log_since log_wait);

# {L1}: a listener on 127.0.0.1; {L2}: on 127.0.0.2 (new ones per case,
# so that each case's target, and its log lines, are its own).
my @cases = (
    { vhost => 'ct_policy_deny', t => '127.0.0.1:{L1}', want => 403,
      desc => '<Proxy "*"> Require all denied' },
    { vhost => 'ct_policy_match', t => '127.0.0.2:{L2}', want => 403,
      desc => '<ProxyMatch> denying this target' },
    { vhost => 'ct_policy_match', t => '127.0.0.1:{L1}', want => 200,
      desc => '<ProxyMatch> not matching this target' },
    { vhost => 'ct_policy_fwd', t => '127.0.0.1:{L1}', want => 403,
      from => '127.0.0.2',
      desc => 'client address outside "Require ip"' },
    { vhost => 'ct_policy_fwd', t => '127.0.0.1:{L1}', want => 200,
      from => '127.0.0.1',
      desc => 'client address inside "Require ip"' },
    { vhost => 'ct_policy_canon', t => 'localhost:{L1}', want => 403,
      desc => '<Proxy "proxy:localhost:*"> denying' },
    { vhost => 'ct_policy_canon', t => 'LOCALHOST:{L1}', want => 403,
      desc => 'the same section, name in upper case' },
    { vhost => 'ct_policy_canon', t => 'LocalHost.:{L1}', want => 403,
      desc => 'the same section, name with a final dot' },
    { vhost => 'ct_policy_canon', t => '127.0.0.2:{L2}', want => 403,
      desc => '<Proxy "127.0.0.2:*"> denying' },
    { vhost => 'ct_policy_canon', t => '[::ffff:127.0.0.2]:{L2}',
      want => 403, desc => 'the same section, ipv4-mapped' },
    { vhost => 'ct_policy_canon', t => '[::FFFF:7f00:2]:{L2}',
      want => 403, desc => 'the same section, ipv4-mapped in hex' },
    { vhost => 'ct_policy_canon', t => '[::127.0.0.2]:{L2}', want => 403,
      desc => 'the same section, ipv4-compatible' },
    { vhost => 'ct_policy_canon', t => '[64:ff9b::7f00:2]:{L2}',
      want => 403, desc => 'the same section, nat64' },
    { vhost => 'ct_policy_canon', t => '127.0.0.1:{L1}', want => 200,
      desc => 'an address no section denies' },
    { vhost => 'ct_policy_canon', t => '127.0.0.3:{L3}', want => 403,
      rule => 1, desc => 'a rule in <ProxyMatch "^127\.0\.0\.3:">' },
    { vhost => 'ct_policy_canon', t => '[::ffff:127.0.0.3]:{L3}',
      want => 403, rule => 1, desc => 'the same rule, ipv4-mapped' },
    { vhost => 'ct_policy_canon', t => '[64:ff9b:1::7f00:3]:{L3}',
      want => 403, rule => 1, desc => 'the same rule, local-use nat64' },
);

plan tests => 3 * @cases;

for my $c (@cases) {
    my %l = (L1 => listener(), L2 => listener(addr => '127.0.0.2'),
             L3 => listener(addr => '127.0.0.3'));
    (my $target = $c->{t}) =~ s/\{(L\d)\}/$l{$1}->sockport/e;
    my $l = $l{$1};
    my $desc = "$c->{desc} ($target)";
    my $mark = log_mark();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => vhost_port($c->{vhost}),
                                  LocalAddr => $c->{from} // '127.0.0.1',
                                  Timeout => 10)
        or die "connect to $c->{vhost}: $!";
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my ($status) = read_head($s);
    ok t_cmp($status, $c->{want}, "$desc: status");
    if ($c->{want} == 403) {
        ok yes(!accept_within($l, 0.1), "$desc: the target got no "
                                       . "connection");
        if ($c->{rule}) {
            ok yes(log_wait($mark, qr/CT00016: tunnel to '127\.0\.0\.3'/),
                   "$desc: refused by the section's rule (CT00016)");
        }
        else {
            # No refusal, lookup or dial of the module's.
            ok yes(log_since($mark) !~ /\bCT000(?:1[0-7]|2\d|30):/,
                   "$desc: the module did not run");
        }
    }
    else {
        my $peer = accept_within($l);
        ok yes($peer, "$desc: the target got the connection");
        ok yes(relays($s, $peer), "$desc: the tunnel carries bytes");
    }
}
