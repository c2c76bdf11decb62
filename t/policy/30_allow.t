# AllowCONNECT in a virtual host: the default (443 563), a list spread
# over two lines, ranges with their edges, a one-port range and "all".  A
# forbidden port is a 403 with CT00011; an allowed one is dialled, which
# for a port nothing listens on is a 502 with CT00027 (so no origin is
# needed to tell the two apart).  A forbidden port gets a listener on
# 127.0.0.1 for the request, and no connection may reach it.  The port check runs before DNS: a
# forbidden port is a 403 even for a name that cannot resolve (a name
# starting with '-', which glibc refuses without sending a query).
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use IO::Socket::INET;
use CT::Origin qw(connect_refused);
use CT::Client qw(raw_connect yes);
use CT::Logs qw(log_mark log_since log_wait);

my @cases = (
    # The default list.
    [ ct_policy_ports_default => 443,   1, 'default: 443' ],
    [ ct_policy_ports_default => 563,   1, 'default: 563' ],
    [ ct_policy_ports_default => 22,    0, 'default: 22' ],
    [ ct_policy_ports_default => 80,    0, 'default: 80' ],
    [ ct_policy_ports_default => 442,   0, 'default: 442' ],
    [ ct_policy_ports_default => 444,   0, 'default: 444' ],
    [ ct_policy_ports_default => 8443,  0, 'default: 8443' ],
    # "AllowCONNECT 8443 9443" and "AllowCONNECT 10443": the lines add up,
    # and the list replaces the default.
    [ ct_policy_ports_list => 8443,  1, 'list: first of the first line' ],
    [ ct_policy_ports_list => 9443,  1, 'list: second of the first line' ],
    [ ct_policy_ports_list => 10443, 1, 'list: the second line' ],
    [ ct_policy_ports_list => 443,   0, 'list: 443 (replaced default)' ],
    [ ct_policy_ports_list => 563,   0, 'list: 563 (replaced default)' ],
    [ ct_policy_ports_list => 8444,  0, 'list: 8444' ],
    # "AllowCONNECT 50000-50010 65530-65535 1-1".
    [ ct_policy_ports_range => 49999, 0, 'range: below the first' ],
    [ ct_policy_ports_range => 50000, 1, 'range: the first port' ],
    [ ct_policy_ports_range => 50005, 1, 'range: inside' ],
    [ ct_policy_ports_range => 50010, 1, 'range: the last port' ],
    [ ct_policy_ports_range => 50011, 0, 'range: above the last' ],
    [ ct_policy_ports_range => 65529, 0, 'range: below 65530' ],
    [ ct_policy_ports_range => 65530, 1, 'range: 65530' ],
    [ ct_policy_ports_range => 65535, 1, 'range: 65535' ],
    [ ct_policy_ports_range => 1,     1, 'range: one-port range 1-1' ],
    [ ct_policy_ports_range => 2,     0, 'range: 2' ],
    [ ct_policy_ports_range => 443,   0, 'range: 443 (replaced default)' ],
    # "AllowCONNECT all".
    [ ct_policy_fwd => 1,     1, 'all: 1' ],
    [ ct_policy_fwd => 22,    1, 'all: 22' ],
    [ ct_policy_fwd => 65535, 1, 'all: 65535' ],
);

# Names that would fail DNS: the port decides first.
my @unresolvable = (
    [ ct_policy_ports_default => '-ct-nx.example:22',  403, 'CT00011',
      'forbidden port, unresolvable name: 403 before DNS' ],
    [ ct_policy_ports_range => '-ct-nx.example:50011', 403, 'CT00011',
      'forbidden port (range), unresolvable name: 403 before DNS' ],
    [ ct_policy_ports_default => '-ct-nx.example:443', 502, 'CT00028',
      'allowed port, unresolvable name: 502 from the DNS failure' ],
);

plan tests => 3 * @cases + 3 * @unresolvable;

for my $c (@cases) {
    my ($vhost, $port, $allowed, $desc) = @$c;
    my $target = "127.0.0.1:$port";
    $desc .= " ($vhost, $target)";
    # An allowed port is dialled: refused (502) unless something listens.
    my $dial = connect_refused($port) ? 502 : 200;
    # A forbidden port listens, so that a dial would be seen.
    my ($l, $lerr);
    if (!$allowed && $dial == 502) {
        $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Listen => 5,
                                   ReuseAddr => 1) or $lerr = "$!";
    }
    $lerr //= 'something else listens there';
    my $mark = log_mark();
    my ($s, $status) = raw_connect($vhost, $target);
    if ($allowed) {
        ok t_cmp($status, $dial, "$desc: allowed, dialled");
        ok yes(log_since($mark) !~ /CT00011:/, "$desc: no CT00011");
        ok yes($dial == 200
               || log_wait($mark, qr/CT00027: connect to \Q$target\E/),
               "$desc: CT00027 for the refused connect");
    }
    else {
        ok t_cmp($status, 403, "$desc: forbidden");
        ok yes(log_wait($mark, qr/CT00011: .*port $port is not in /),
               "$desc: CT00011 names the port");
        if ($l) {
            # The dial, if any, comes before the answer: a short wait is
            # only for a slow accept queue.
            my $came = IO::Select->new($l)->can_read(0.1);
            ok yes(!$came, "$desc: no connection reached a listener on "
                           . "the port");
        }
        else {
            skip("$desc: cannot listen on port $port ($lerr)");
        }
    }
}

for my $c (@unresolvable) {
    my ($vhost, $target, $want, $tag, $desc) = @$c;
    my $mark = log_mark();
    my ($s, $status) = raw_connect($vhost, $target);
    ok t_cmp($status, $want, "$desc: status");
    ok yes(log_wait($mark, qr/\Q$tag\E:/), "$desc: $tag in the error log");
    my $other = $tag eq 'CT00011' ? 'CT00028' : 'CT00011';
    ok yes(log_since($mark) !~ /\Q$other\E:/, "$desc: no $other");
}
