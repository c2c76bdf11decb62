# <Proxy> and <ProxyMatch> access control applies to CONNECT: a denied
# request is a 403 from httpd's authorization, the module never runs (no
# CT tag, no dial) and the target gets no connection.  The same target is
# reachable where nothing denies it, and a client outside "Require ip" is
# refused too.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::INET;
use CT::Raw qw(vhost_port read_head);
use CT::Policy qw(log_mark log_since listener accept_within relays
                  yes);

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
);

plan tests => 3 * @cases;

for my $c (@cases) {
    my %l = (L1 => listener(), L2 => listener(addr => '127.0.0.2'));
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
        ok yes(log_since($mark) !~ /\bCT\d{5}:.*\Q$target\E/,
               "$desc: the module did not run");
    }
    else {
        my $peer = accept_within($l);
        ok yes($peer, "$desc: the target got the connection");
        ok yes(relays($s, $peer), "$desc: the tunnel carries bytes");
    }
}
