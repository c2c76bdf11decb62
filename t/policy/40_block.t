# ProxyBlock.  A target whose name contains a listed word is refused with
# 403 (CT00012) before any DNS, so a blocked name costs no lookup and leaks
# nothing; a target whose resolved address is a listed address is refused
# with 403 (CT00021) before any connect.  Unlisted targets still work.
# The blocked names start with '-': glibc refuses such a name without a
# query, so if the name check came after DNS the answer would be a 502
# (CT00028), and no lookup could leave the machine either way.
#
# Addresses are compared in normal form: a NAT64 spelling of a listed
# IPv4 address (64:ff9b::/96, and RFC 8215's 64:ff9b:1::/48) is blocked,
# and so is an IPv4 address listed in its NAT64 form.
#
# ct_policy_block has "ProxyBlock -ct-blocked 127.0.0.1 64:ff9b::7f00:3".
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::IP;
use CT::Origin qw(accept_within closed_port listener);
use CT::Client qw(raw_connect relays yes);
use CT::Logs qw(log_mark log_since log_wait);

my $vhost = 'ct_policy_block';

# {P}: a port that refuses; {L2}: a listener on 127.0.0.2; {L6}: on ::1.
my @cases = (
    { t => '-ct-blocked.example:443', want => 403, tag => 'CT00012',
      desc => 'name containing a listed word, before DNS' },
    { t => '-ct-blocked:443', want => 403, tag => 'CT00012',
      desc => 'name equal to a listed word, before DNS' },
    { t => '-CT-Blocked.example:443', want => 403, tag => 'CT00012',
      desc => 'listed word in another case (host names have none)' },
    { t => '127.0.0.1:{P}', want => 403, tag => 'CT00012',
      desc => 'literal equal to a listed address (name test)' },
    { t => 'localhost:{P}', want => 403, tag => 'CT00021',
      desc => 'name resolving to a listed address' },
    { t => '[64:ff9b::7f00:1]:{P}', want => 403, tag => 'CT00012',
      desc => 'nat64 form of a listed address' },
    { t => '[64:ff9b:1::7f00:1]:{P}', want => 403, tag => 'CT00012',
      desc => 'local-use nat64 (RFC 8215) form of a listed address' },
    { t => '127.0.0.3:{P}', want => 403, tag => 'CT00021',
      desc => 'address listed in its nat64 form' },
    { t => '[::ffff:127.0.0.3]:{P}', want => 403, tag => 'CT00021',
      desc => 'ipv4-mapped address listed in its nat64 form' },
    { t => '127.0.0.2:{L2}', want => 200, tag => undef,
      desc => 'unlisted ipv4 address' },
    { t => '[::1]:{L6}', want => 200, tag => undef,
      desc => 'unlisted ipv6 address' },
);

plan tests => 4 * @cases;

my ($closed, $closed_port) = closed_port();
my $l2 = listener(addr => '127.0.0.2');
my $l6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                             Listen => 16, ReuseAddr => 1)
    or die "listen on [::1]: $!";

for my $c (@cases) {
    (my $target = $c->{t}) =~ s/\{P\}/$closed_port/;
    $target =~ s/\{L2\}/$l2->sockport/e;
    $target =~ s/\{L6\}/$l6->sockport/e;
    my $desc = "$c->{desc} ($target)";
    my $mark = log_mark();
    my ($s, $status) = raw_connect($vhost, $target);
    ok t_cmp($status, $c->{want}, "$desc: status");
    if ($c->{tag}) {
        ok yes(log_wait($mark, qr/$c->{tag}: tunnel to '/),
               "$desc: $c->{tag} in the error log");
        my $log = log_since($mark);
        ok yes($log !~ /CT0002[0678]:/, "$desc: nothing was dialled");
        ok yes($c->{tag} ne 'CT00012' || $log !~ /CT00028:/,
               "$desc: no DNS lookup");
    }
    else {
        my $l = $target =~ /^\[/ ? $l6 : $l2;
        my $peer = accept_within($l);
        ok yes($peer, "$desc: the target got the connection");
        ok yes(log_since($mark) !~ /CT000(?:12|21):/,
               "$desc: no ProxyBlock refusal");
        ok yes(relays($s, $peer), "$desc: the tunnel carries bytes");
    }
}
