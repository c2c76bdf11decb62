# Tunnel limits, checked before any connection to the origin:
#   ConnectTunnelMaxTunnelsPerClient 2   the third concurrent tunnel from
#       one client address gets 429 (log CT00060), another client address
#       has its own budget, and a closed tunnel gives its place back;
#   ConnectTunnelMaxTunnels 3            the fourth concurrent tunnel in
#       the whole server (shared by its children) gets 503;
#   ConnectTunnelMaxTunnelsPerChild 1    no child process holds more than
#       one tunnel at once: of many concurrent attempts at least one gets
#       through, no more than the children there are, the rest get 503.
#   ConnectTunnelClientPrefix 24         clients are counted by their /24:
#       127.0.0.2 and 127.0.0.3 share one budget of 2 (the third tunnel
#       from either gets 429), while 127.0.1.2 has its own.
# Every refusal carries "Proxy-Status: ...; error=connection_limit_reached"
# and opens no connection to the origin (its listener counts accepts).
# The test server runs two children (extra.conf.in), so which child gets
# a connection is up to the kernel: the per-child assertions hold for any
# distribution.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time sleep);
use CT::Server ();
use CT::Origin qw(listener take_accepts);
use CT::Client qw(proxy_socket ps_error read_head relays tunnel_via
                  vhost_port);
use CT::Logs qw(count_lines log_mark log_since log_wait no_crash wait_count);

plan tests => 30;

my $start = log_mark();

# Requests made and tunnels established per target, so that each part
# can wait until the server is done with the previous ones (and so has
# given their counts back) before it counts tunnels again.
my (%made, %established);

sub open_tunnel {
    my ($vhost, $target, %o) = @_;
    $made{$target}++;
    my @r = tunnel_via(vhost_port($vhost), $target, %o);
    $established{$target}++ if $r[1] == 200;
    return @r;
}

# Wait until every request to $target but the $open tunnels still open
# is logged (access log: at the end of the request, which for a tunnel
# relayed in a worker is its end) and every closed tunnel has its record
# in the end-of-tunnel log (ConnectTunnelLog: written when a tunnel ends,
# in a worker or a reactor).  The counts are given back right after.
sub settle {
    my ($target, $open, $access_log) = @_;
    $open //= 0;
    my $requests = $made{$target} - $open;
    my $ended = $established{$target} - $open;
    my $ok = wait_count($access_log // 'tunnel_log',
                        qr/"CONNECT \Q$target\E HTTP/, $requests, 10)
             && wait_count('tunnels_log', qr/ target=\Q$target\E /, $ended,
                           10);
    ok $ok or t_debug("the server did not log $requests requests and "
                      . "$ended tunnel ends for $target within 10 s");
    sleep 0.2;
}

# --- Per client address. ---
{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $target = '127.0.0.1:' . $l->sockport;
    my (@client, @origin);
    for my $i (1, 2) {
        my ($s, $status) = open_tunnel('ct_sec_perclient', $target);
        my @got = take_accepts(5, $l);
        push @client, $s;
        push @origin, @got;
        ok $status == 200 && @got == 1 && relays($s, $got[0], "pc$i")
            or t_debug("per-client tunnel $i: got $status");
    }
    my $mark = log_mark();
    my ($s3, $status3, $h3) = open_tunnel('ct_sec_perclient', $target);
    my @none = take_accepts(0.5, $l);
    ok $status3 == 429 && ps_error($h3) eq 'connection_limit_reached'
       && !@none
        or t_debug("third tunnel from 127.0.0.1: got $status3 '"
                   . ps_error($h3) . "', " . scalar(@none)
                   . " connection(s) at the origin");
    ok log_wait($mark,
                qr/CT00060: tunnel refused: client 127\.0\.0\.1(?::\d+)? already has 2 tunnels open/,
                5, line => 1, default => '')
       ne '' or t_debug(log_since($mark));
    close $_ for $s3, @none;

    # Another client address is counted on its own.
    my ($s4, $status4) = open_tunnel('ct_sec_perclient', $target,
                                     from => '127.0.0.2');
    my @got4 = take_accepts(5, $l);
    ok $status4 == 200 && @got4 == 1 && relays($s4, $got4[0], 'pc-other')
        or t_debug("tunnel from 127.0.0.2: got $status4");
    close $_ for $s4, @got4;

    # Closing one tunnel (both ends) gives its place back.
    close $_ for shift @client, shift @origin;
    settle($target, scalar @client);
    my ($status5, $tries) = (0, 0);
    my ($s5, @got5);
    my $deadline = time + 5;
    while (time < $deadline) {
        $tries++;
        ($s5, $status5) = open_tunnel('ct_sec_perclient', $target);
        last if $status5 != 429;
        close $s5;
        sleep 0.2;
    }
    @got5 = take_accepts(5, $l) if $status5 == 200;
    ok $status5 == 200 && @got5 == 1 && relays($s5, $got5[0], 'pc-again')
        or t_debug("after closing one: got $status5 after $tries tries");
    close $_ for $s5, @got5, @client, @origin;
    settle($target);
}

# --- Clients grouped by prefix. ---
{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $target = '127.0.0.1:' . $l->sockport;
    my @keep;
    my @st;
    for my $from (qw(127.0.0.2 127.0.0.3)) {
        my ($s, $status) = open_tunnel('ct_sec_prefix', $target,
                                       from => $from);
        push @st, $status;
        push @keep, $s, take_accepts($status == 200 ? 5 : 0, $l);
    }
    ok "@st" eq '200 200' or t_debug("two of one /24: @st");
    my $mark = log_mark();
    my ($s3, $status3, $h3) = open_tunnel('ct_sec_prefix', $target,
                                          from => '127.0.0.3');
    my @none = take_accepts(0.5, $l);
    ok $status3 == 429 && ps_error($h3) eq 'connection_limit_reached'
       && !@none
        or t_debug("third of one /24 (from 127.0.0.3): got $status3");
    ok log_wait($mark,
                qr/CT00060: tunnel refused: client 127\.0\.0\.3 \(counted with its \/24\) already has 2 tunnels open/,
                5, line => 1, default => '')
       ne '' or t_debug(log_since($mark));
    # Another /24 is another client.
    my ($s4, $status4) = open_tunnel('ct_sec_prefix', $target,
                                     from => '127.0.1.2');
    my @got4 = take_accepts($status4 == 200 ? 5 : 0, $l);
    ok $status4 == 200 && @got4 == 1 && relays($s4, $got4[0], 'prefix')
        or t_debug("from 127.0.1.2 (another /24): got $status4");
    close $_ for $s3, @none, $s4, @got4, @keep;
    settle($target);
}

# --- Failed dials give their count back. ---
# Three CONNECTs from 127.0.0.9 to a closed port are counted while they
# dial and must be given back when they fail (502): two tunnels from that
# address must work afterwards, and only the third be refused.
{
    my $closed = CT::Server::free_port();
    my @fail;
    for (1 .. 3) {
        my ($s, $status, $h) = open_tunnel('ct_sec_perclient',
                                           "127.0.0.1:$closed",
                                           from => '127.0.0.9');
        push @fail, "$status " . ps_error($h);
        close $s;
    }
    ok "@fail" eq join ' ', ('502 connection_refused') x 3
        or t_debug("dials to a closed port: @fail");
    settle("127.0.0.1:$closed");
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $target = '127.0.0.1:' . $l->sockport;
    my (@st, @keep);
    for (1 .. 3) {
        my ($s, $status) = open_tunnel('ct_sec_perclient', $target,
                                       from => '127.0.0.9');
        push @st, $status;
        push @keep, $s, take_accepts($status == 200 ? 5 : 0, $l);
    }
    ok "@st" eq '200 200 429' or t_debug("after failed dials: @st");
    close $_ for @keep;
    settle($target);
}

# --- The whole server. ---
{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $target = '127.0.0.1:' . $l->sockport;
    my (@client, @origin);
    my $all = 1;
    for my $i (1 .. 3) {
        # From different client addresses: only the server limit applies.
        my ($s, $status) = open_tunnel('ct_sec_maxtun', $target,
                                       from => "127.0.0.$i");
        my @got = take_accepts(5, $l);
        push @client, $s;
        push @origin, @got;
        $all &&= $status == 200 && @got == 1 && relays($s, $got[0], "mt$i");
    }
    ok $all or t_debug('three tunnels under ConnectTunnelMaxTunnels 3 '
                       . 'did not all work');
    my $mark = log_mark();
    my ($s4, $status4, $h4) = open_tunnel('ct_sec_maxtun', $target,
                                          from => '127.0.0.4');
    my @none = take_accepts(0.5, $l);
    ok $status4 == 503 && ps_error($h4) eq 'connection_limit_reached'
       && !@none
        or t_debug("fourth tunnel: got $status4 '" . ps_error($h4)
                   . "', " . scalar(@none) . " connection(s)");
    ok log_wait($mark,
                qr/CT00060: tunnel refused: the server already has 3 tunnels open/,
                5, line => 1, default => '')
       ne '';
    close $_ for $s4, @none;

    close $_ for shift @client, shift @origin;
    settle($target, scalar @client);
    my ($s5, $status5) = open_tunnel('ct_sec_maxtun', $target,
                                     from => '127.0.0.5');
    my @got5 = take_accepts(5, $l);
    ok $status5 == 200 && @got5 == 1 && relays($s5, $got5[0], 'mt-again')
        or t_debug("after closing one: got $status5");
    close $_ for $s5, @got5, @client, @origin;
    settle($target);
}

# --- One child process. ---
{
    my $n = 6;
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $target = '127.0.0.1:' . $l->sockport;
    my $mark = log_mark();
    # All requests go out before any answer is read: they are concurrent.
    my @s = map { proxy_socket(vhost_port('ct_sec_perchild')) } 1 .. $n;
    for (@s) {
        print $_ "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
        $made{$target}++;
    }
    my (@open, @refused, @other);
    for (@s) {
        my ($status, $h) = read_head($_);
        $status //= 0;
        if ($status == 200) { push @open, $_ }
        elsif ($status == 503 && ps_error($h) eq 'connection_limit_reached') {
            push @refused, $_;
        }
        else { push @other, $status }
    }
    $established{$target} = @open;
    my @got = take_accepts(5, $l);
    # The children there are: at most ServerLimit (4 in extra.conf.in).
    ok @open >= 1 && @open <= 4 && !@other && @open + @refused == $n
        or t_debug(scalar(@open) . " open, " . scalar(@refused)
                   . " refused, others: @other");
    t_debug(scalar(@open) . " of $n tunnels open at once");
    ok @got == @open
        or t_debug(scalar(@got) . " connections for " . scalar(@open)
                   . " tunnels");
    ok !@refused || log_wait($mark,
                             qr/CT00060: tunnel refused: this child process already has 1 tunnels open/,
                             5, line => 1, default => '') ne '';
    close $_ for @s, @got;
    settle($target, 0, 'sec_perchild_log');
    # The virtual host logs the serving child's PID with each request
    # (security.conf.in): the tunnels that were open at once were each
    # served by a different child.
    my @pids;
    my $file = Apache::Test::vars('t_logs') . '/sec_perchild_log';
    if (open my $fh, '<', $file) {
        for (<$fh>) {
            push @pids, $1 if /^(\d+) 200 "CONNECT \Q$target\E /;
        }
    }
    my %seen;
    ok @pids == @open && !grep { $seen{$_}++ } @pids
        or t_debug("200s by pid: @pids (" . scalar(@open) . " were open)");
}

# The server survived all of it, and a good tunnel still works.
{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my ($s, $status) = tunnel_via(vhost_port('ct_all'),
                                  '127.0.0.1:' . $l->sockport);
    my @got = take_accepts(5, $l);
    ok $status == 200 && @got == 1 && relays($s, $got[0], 'last');
    close $_ for $s, @got;
    ok no_crash($start);
}
