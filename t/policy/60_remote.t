# ProxyRemote: chaining a CONNECT through an upstream proxy.
#
# - Through a real upstream (ct_policy_chain -> ct_policy_up, both this
#   server): the tunnel reaches a local listener and bytes flow both ways;
#   both proxies log the request.
# - Through a recording fake upstream (ct_policy_rec, ct_policy_rec_creds):
#   the CONNECT sent upstream is "CONNECT host:port HTTP/1.x" with a Host
#   header, carries the ProxyRemote credentials (third argument, httpd
#   2.4.59+) as Proxy-Authorization and never the client's own; bytes the
#   upstream sends right behind its 200 reach the client after our own 200.
# - An upstream that refuses the tunnel (407, 403), answers garbage, hangs
#   up, is down, or whose name does not resolve: the client gets the
#   module's own 502 (never the upstream's raw bytes), with the matching
#   log tag, and the target is never dialled directly (stock httpd falls
#   back to a direct connection when the upstream is unusable, which
#   bypasses a filtering parent proxy).
# - Checks that need no DNS (AllowCONNECT, ProxyBlock names) run before
#   the upstream's name is looked up.
use strict;
use warnings;
use lib 't/lib';
use IO::Socket::IP;
use IO::Select;
use Time::HiRes qw(sleep);
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(conf_define t_path);
use CT::Origin qw(accept_within connect_refused listener
                  read_request_head);
use CT::Client qw(header_of raw_connect read_bytes read_head read_to_eof
                  send_raw yes);
use CT::Logs qw(log_mark log_since log_wait);

my $recorder = listener(port => conf_define('ct_policy_recorder_port'));
my $closed_port = conf_define('ct_policy_closed_port');

# A CONNECT to $vhost for $target, with the recorder answering @reply
# (strings written one by one; an empty list: hang up).  Returns a hash:
# status, h (headers), head, rest (bytes past the head), recorded (what
# the upstream received), up (the upstream's socket), client.
sub via_recorder {
    my ($vhost, $target, $reply, %o) = @_;
    my $client = send_raw($vhost, "CONNECT $target HTTP/1.1\r\n"
                                . "Host: $target\r\n"
                                . ($o{headers} // '') . "\r\n");
    my %r = (client => $client, recorded => '');
    my $up = accept_within($recorder);
    if ($up) {
        $r{recorded} = read_request_head($up);
        for my $chunk (@$reply) {
            print $up $chunk;
            sleep 0.1;
        }
        close $up unless @$reply;
        $r{up} = $up;
    }
    @r{qw(status h head rest)} = read_head($client);
    $r{status} //= '';
    return \%r;
}

my $l = listener();
my $lport = $l->sockport;
my $l6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                             Listen => 16, ReuseAddr => 1)
    or die "listen on [::1]: $!";

my $ok200 = "HTTP/1.1 200 Connection established\r\n\r\n";

# Upstream answers that must become our own 502 without a direct dial.
my @refusals = (
    { desc  => 'upstream answers 407',
      reply => [ "HTTP/1.1 407 Proxy Authentication Required\r\n"
               . "Proxy-Authenticate: Basic realm=\"up\"\r\n"
               . "Content-Length: 9\r\n\r\nUPSTREAM!" ],
      # Our own page may quote the status; the upstream's bytes must not
      # pass: its status line, its challenge or its body.
      tag   => 'CT00025',
      raw   => qr{HTTP/1\.1 407|Proxy-Authenticate|realm="up"|UPSTREAM!}i },
    { desc  => 'upstream answers 403',
      reply => [ "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n"
               . "UPSTREAM!" ],
      tag   => 'CT00025', raw => qr/UPSTREAM!/ },
    { desc  => 'upstream answers garbage',
      reply => [ "SSH-2.0-OpenSSH_9.2\r\n\r\n" ],
      tag   => 'CT00024', raw => qr/SSH-2\.0/ },
    { desc  => 'upstream hangs up without a reply',
      reply => [],
      tag   => 'CT00023', raw => undef },
);

# Other upstream troubles, with their own virtual hosts.
my @unusable = (
    { desc => 'upstream is down (refuses)', vhost => 'ct_policy_deadup',
      tag => 'CT00027' },
    { desc => 'upstream name does not resolve', vhost => 'ct_policy_dnsup',
      tag => 'CT00028' },
);

# An upstream that accepts and never answers: 504 after ProxyTimeout 3.
my %silent = (desc => 'upstream never answers', tag => 'CT00023');

# Refusals that need no DNS, before the upstream's lookup.
my @early = (
    { desc => 'forbidden port', t => '127.0.0.1:65001', tag => 'CT00011' },
    { desc => 'ProxyBlock name', t => '-ct-blocked.example:443',
      tag => 'CT00012' },
);

plan tests => 7 + 12 + 5 * @refusals + 3 * @unusable + 3 + 3 * @early;

# 1. Through ct_policy_up: the tunnel works end to end (7 tests).
{
    my $target = "127.0.0.1:$lport";
    my $log = t_path('logs', 'tunnel_log');
    my $log_at = -s $log || 0;
    my ($s, $status, $h, $head, $rest) = raw_connect('ct_policy_chain',
                                                     $target);
    ok t_cmp($status, 200, 'chain through ct_policy_up: 200');
    ok t_cmp((split /\r\n/, $head // '')[0],
             'HTTP/1.1 200 Connection Established',
             'chain: the client sees our own 200');
    my $origin = accept_within($l);
    ok yes($origin, 'chain: the target got the connection');
    print $s 'ping-up';
    ok t_cmp($origin ? read_bytes($origin, 7) : '', 'ping-up',
             'chain: client to origin');
    print $origin 'pong-down' if $origin;
    ok t_cmp(($rest // '') . read_bytes($s, 9 - length($rest // '')),
             'pong-down', 'chain: origin to client');
    close $s;
    close $origin if $origin;
    # Both proxies log the request once the tunnel is over.
    my $lines = 0;
    for (1 .. 100) {
        open my $fh, '<', $log or last;
        seek $fh, $log_at, 0;
        $lines = grep { /"CONNECT \Q$target\E HTTP\/1\.1" 200 / } <$fh>;
        last if $lines >= 2;
        sleep 0.1;
    }
    ok t_cmp($lines, 2, 'chain: both proxies logged the tunnel');
    ok yes(connect_refused($closed_port),
           "sanity: nothing listens on the closed port $closed_port");
}

# 2. The CONNECT sent upstream, and what follows the upstream's 200
#    (12 tests).
{
    my $target = "127.0.0.1:$lport";
    my $r = via_recorder('ct_policy_rec', $target, [ $ok200 ],
        headers => "Proxy-Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n");
    ok t_cmp($r->{recorded}, qr{\ACONNECT \Q$target\E HTTP/1\.[01]\r\n},
             'upstream request line');
    ok t_cmp(header_of($r->{recorded}, 'Host'), $target,
             'upstream request has a Host header');
    ok t_cmp(header_of($r->{recorded}, 'Proxy-Authorization'), undef,
             'no credentials configured: none sent, not even the '
             . 'client\'s');
    ok t_cmp($r->{status}, 200, 'upstream 200: the client gets 200');

    my $t6 = '[::1]:' . $l6->sockport;
    $r = via_recorder('ct_policy_rec', $t6, [ $ok200 ]);
    ok t_cmp($r->{recorded}, qr{\ACONNECT \Q$t6\E HTTP/1\.[01]\r\n},
             'upstream request line for an ipv6 target');
    ok t_cmp(header_of($r->{recorded}, 'Host'), $t6,
             'Host header for an ipv6 target');

    $r = via_recorder('ct_policy_rec_creds', $target, [ $ok200 ]);
    ok t_cmp(header_of($r->{recorded}, 'Proxy-Authorization'),
             'Basic dXNlcjpwYXNz',
             'ProxyRemote credentials sent as Proxy-Authorization');

    # Early bytes behind the upstream's 200, in the same write.
    $r = via_recorder('ct_policy_rec', $target,
                      [ $ok200 . 'EARLY-BYTES' ]);
    ok t_cmp((split /\r\n/, $r->{head} // '')[0],
             'HTTP/1.1 200 Connection Established',
             'upstream 200: the client sees our own status line');
    my $early = ($r->{rest} // '');
    $early .= read_bytes($r->{client}, 11 - length $early);
    ok t_cmp($early, 'EARLY-BYTES',
             'bytes behind the upstream\'s 200 reach the client');

    # More early bytes than one read of the upstream's head holds: the
    # rest must follow through the relay, in order.
    my $big = join '', map { sprintf '%07d,', $_ } 1 .. 2500;
    $r = via_recorder('ct_policy_rec', $target, [ $ok200 . $big ]);
    my $got = ($r->{rest} // '');
    $got .= read_bytes($r->{client}, length($big) - length $got);
    ok t_cmp(length $got, length $big,
             'early bytes beyond one read: all of them arrive');
    ok yes($got eq $big, 'early bytes beyond one read: in order');

    # The upstream's head split over two writes.
    $r = via_recorder('ct_policy_rec', $target,
                      [ "HTTP/1.1 200 Connection established\r\n",
                        "Via: 1.1 up\r\n\r\n" ]);
    ok t_cmp($r->{status}, 200, 'upstream 200 head in two writes: 200');
}

# 3. Upstream refusals: our own 502, not the upstream's bytes, no direct
#    dial (5 tests each).
for my $c (@refusals) {
    my $target = "127.0.0.1:$lport";
    my $mark = log_mark();
    my $client = send_raw('ct_policy_rec', "CONNECT $target HTTP/1.1\r\n"
                                         . "Host: $target\r\n\r\n");
    my $up = accept_within($recorder);
    if ($up) {
        read_request_head($up);
        print $up $_ for @{ $c->{reply} };
        close $up;
    }
    my ($status, $h, $head, $rest) = read_head($client);
    # A direct connection would hold the client in a tunnel: end it.
    my $direct = accept_within($l, 0.1);
    close $direct if $direct;
    my ($more) = read_to_eof($client, 5);
    my $bytes = ($head // '') . "\r\n\r\n" . ($rest // '') . $more;
    ok t_cmp($status // '', 502, "$c->{desc}: 502");
    ok t_cmp($h ? $h->{'content-type'} : undef, qr{^text/html},
             "$c->{desc}: our own HTML error page");
    ok yes(!defined $c->{raw} || $bytes !~ $c->{raw},
           "$c->{desc}: none of the upstream's bytes reach the client");
    ok yes(log_wait($mark, qr/$c->{tag}:/), "$c->{desc}: $c->{tag}");
    ok yes(!$direct, "$c->{desc}: no direct connection to the target");
}

# 4. Unusable upstreams (3 tests each).
for my $c (@unusable) {
    my $target = "127.0.0.1:$lport";
    my $mark = log_mark();
    my ($s, $status) = raw_connect($c->{vhost}, $target);
    my $direct = accept_within($l, 0.1);
    ok t_cmp($status, 502, "$c->{desc}: 502");
    ok yes(log_wait($mark, qr/$c->{tag}:/), "$c->{desc}: $c->{tag}");
    ok yes(!$direct, "$c->{desc}: no direct connection to the target");
}

# 5. A silent upstream: the reply timeout is a 504 (3 tests).
{
    my $target = "127.0.0.1:$lport";
    my $mark = log_mark();
    my $client = send_raw('ct_policy_rec', "CONNECT $target HTTP/1.1\r\n"
                                         . "Host: $target\r\n\r\n");
    my $up = accept_within($recorder);
    read_request_head($up) if $up;
    my ($status) = read_head($client, 15);
    my $direct = accept_within($l, 0.1);
    ok t_cmp($status // '', 504, "$silent{desc}: 504");
    ok yes(log_wait($mark, qr/$silent{tag}:/),
           "$silent{desc}: $silent{tag}");
    ok yes(!$direct, "$silent{desc}: no direct connection to the target");
}

# 6. Refusals before the upstream's (failing) DNS lookup (3 tests each).
for my $c (@early) {
    my $mark = log_mark();
    my ($s, $status) = raw_connect('ct_policy_dnsup', $c->{t});
    ok t_cmp($status, 403, "$c->{desc} via ProxyRemote: 403");
    ok yes(log_wait($mark, qr/$c->{tag}:/), "$c->{desc}: $c->{tag}");
    ok yes(log_since($mark) !~ /CT00028:/,
           "$c->{desc}: decided before the upstream's DNS lookup");
}
