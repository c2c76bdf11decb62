# New tunnels per second, per client and per destination host, and open
# tunnels per destination host:
#   ConnectTunnelClientRate 1 3        three at once from one client, then
#                                      429 with Retry-After and Proxy-Status
#                                      error=connection_limit_reached; each
#                                      client has its own budget; with
#                                      ConnectTunnelClientPrefix 24 a /24
#                                      shares one; a tunnel refused earlier
#                                      (403) takes nothing from it; it
#                                      fills up again with time
#   ConnectTunnelDestinationRate 1 2   two at once to one host (whichever
#                                      client asks, however the name is
#                                      spelt), then 429; another host has
#                                      its own budget
#   several children                   one budget for the whole server
#                                      (tunnels held in workers, so that
#                                      three children serve them)
#   ConnectTunnelMaxTunnelsPerDestination 2
#                                      a third open tunnel to one host gets
#                                      503; its count is given back when a
#                                      tunnel ends and when the child
#                                      holding tunnels is killed (SIGKILL)
# A server of its own (children are killed), with the relay the suite
# runs with.  Rates are 1 a second, so that a check counts what a burst
# got against the time it took: the burst, plus one for each second
# that passed; waits are bounded.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of free_port holders suite_mode);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error tunnel_via);
use CT::Logs qw(log_mark log_since status_auto);

plan tests => 30;

my $mode = suite_mode(copy => 1);
my ($p_client, $p_prefix, $p_dest, $p_kids, $p_conc) =
    map { free_port() } 1 .. 5;
my $srv = CT::Server->start(port => $p_client, relay => 1, threads => 2,
                            config => <<"EOF", mpm => <<'MPM');
${\ CT::Server::load_lines('status') }Listen 127.0.0.1:$p_client
Listen 127.0.0.1:$p_prefix
Listen 127.0.0.1:$p_dest
Listen 127.0.0.1:$p_kids
Listen 127.0.0.1:$p_conc
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
ConnectTunnelDeny 127.0.0.9
ConnectTunnelAllow loopback
ConnectTunnelClientRate 1 3
<Location "/server-status">
    SetHandler server-status
</Location>
<VirtualHost 127.0.0.1:$p_prefix>
    ConnectTunnelClientPrefix 24
</VirtualHost>
<VirtualHost 127.0.0.1:$p_dest>
    ConnectTunnelClientRate 0
    ConnectTunnelDestinationRate 1 2
</VirtualHost>
<VirtualHost 127.0.0.1:$p_kids>
    ConnectTunnelHandoff Off
    ConnectTunnelClientRate 1 5
</VirtualHost>
<VirtualHost 127.0.0.1:$p_conc>
    ConnectTunnelClientRate 0
    ConnectTunnelMaxTunnelsPerDestination 2
</VirtualHost>
EOF
StartServers 3
ServerLimit 3
ThreadsPerChild 4
MaxRequestWorkers 12
MinSpareThreads 1
MaxSpareThreads 12
MPM

my $start = log_mark($srv->{error_log});
my $l = listener(addr => '127.0.0.1', take_all => 1);
my $lport = $l->sockport;
my @held;       # sockets of tunnels kept open, both ends

# Poll $cond (bounded); its last value.
sub within {
    my ($secs, $cond) = @_;
    my $deadline = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.1;
    }
}

# One CONNECT; a tunnel's two ends are kept in @held.  (status, headers)
sub attempt {
    my ($port, $host, $from) = @_;
    my ($s, $st, $h) = tunnel_via($port, "$host:$lport", from => $from);
    if ($st == 200) {
        push @held, $s, take_accepts(5, $l);
    }
    else {
        close $s;
    }
    return ($st, $h);
}

sub close_held { close $_ for splice @held }

# $n CONNECTs in a row; the statuses, the headers of the first refusal
# and whether the count of 200s fits $burst at 1 a second in the time
# the burst took, the 200s first.
sub burst {
    my ($port, $host, $from, $n, $burst) = @_;
    my (@st, $refusal);
    my $t0 = time;
    for (1 .. $n) {
        my ($st, $h) = attempt($port, $host, $from);
        push @st, $st;
        $refusal //= $h if $st != 200;
    }
    my $took = time - $t0;
    my $ok = grep { $_ == 200 } @st;
    my $fits = $ok >= $burst && $ok <= $burst + int($took)
               && "@st" =~ /^(?:200 )*(?:429 ?)+$/;
    t_debug("$mode $host from $from through $port: @st in "
            . sprintf('%.2f', $took) . " s (burst $burst)") unless $fits;
    return ($fits, $refusal // {}, \@st);
}

sub refused_right {
    my ($h, $what) = @_;
    my $ok = ps_error($h) eq 'connection_limit_reached'
             && ($h->{'retry-after'} // '') eq '1';
    t_debug("$mode $what: Proxy-Status '" . ($h->{'proxy-status'} // '')
            . "', Retry-After '" . ($h->{'retry-after'} // '') . "'")
        unless $ok;
    return $ok;
}

sub refused_count {
    my %s = status_auto($p_client);
    return $s{ConnectTunnelsRefused_connection_limit_reached} // -1;
}

# --- Across children: one budget for the whole server. ---
{
    my ($fits, $h, $st) = burst($p_kids, '127.0.0.1', '127.0.0.20', 7, 5);
    ok $fits;
    my @pids = holders($lport, children_of($srv->{pid}));
    ok @pids >= 2
        or t_debug("$mode children: the tunnels are held by @pids only");
    close_held();
}

# --- One client: the burst, then 429 with Retry-After. ---
my $before = refused_count();
{
    my ($fits, $h) = burst($p_client, '127.0.0.1', '127.0.0.1', 5, 3);
    ok $fits;
    ok refused_right($h, 'client burst');
    close_held();
}

# --- It fills up again: a tunnel within a few seconds. ---
{
    my $st = 0;
    my $t0 = time;
    within(5, sub { ($st) = attempt($p_client, '127.0.0.1', '127.0.0.1');
                    $st == 200 });
    ok $st == 200
        or t_debug("$mode refill: still $st after " . (time - $t0) . " s");
    close_held();
}

# --- Many clients: each its own budget. ---
for my $i (2 .. 8) {
    my ($fits) = burst($p_client, '127.0.0.1', "127.0.0.$i", 4, 3);
    ok $fits;
    close_held();
}

# --- Refused earlier (403 by a rule): nothing taken from the budget. ---
{
    my @st = map { (attempt($p_client, '127.0.0.9', '127.0.0.10'))[0] }
             1 .. 4;
    ok "@st" eq '403 403 403 403' or t_debug("$mode denied: @st");
    my ($fits) = burst($p_client, '127.0.0.1', '127.0.0.10', 4, 3);
    ok $fits;
    close_held();
}

# --- ConnectTunnelClientPrefix 24: 127.0.0.11 and .12 are one client. ---
{
    my ($st1) = attempt($p_prefix, '127.0.0.1', '127.0.0.11');
    my ($st2) = attempt($p_prefix, '127.0.0.1', '127.0.0.11');
    my ($fits) = burst($p_prefix, '127.0.0.1', '127.0.0.12', 3, 1);
    ok $st1 == 200 && $st2 == 200 && $fits
        or t_debug("$mode prefix: $st1 $st2");
    close_held();
}

# --- Per destination host: whichever client, however spelt. ---
{
    my @st;
    push @st, (attempt($p_dest, 'localhost', '127.0.0.13'))[0];
    push @st, (attempt($p_dest, 'LOCALHOST.', '127.0.0.14'))[0];
    my ($fits, $h) = burst($p_dest, 'Localhost', '127.0.0.15', 2, 0);
    ok "@st" eq '200 200' && $fits or t_debug("$mode destination: @st");
    ok refused_right($h, 'destination');
    my ($fits2) = burst($p_dest, '127.0.0.1', '127.0.0.13', 4, 2);
    ok $fits2;
    close_held();
}

# --- Counted in mod_status by their Proxy-Status error type. ---
{
    my $after = refused_count();
    ok $after - $before >= 12
        or t_debug("$mode status: refused went from $before to $after");
}

# --- Open tunnels per destination host. ---
{
    my @st = map { (attempt($p_conc, 'localhost', "127.0.0.$_"))[0] }
             21, 22;
    ok "@st" eq '200 200' or t_debug("$mode concurrent: @st");
    my ($st3, $h3) = attempt($p_conc, 'LocalHost', '127.0.0.23');
    ok $st3 == 503 && ps_error($h3) eq 'connection_limit_reached'
        or t_debug("$mode concurrent: a third got $st3");
    my ($other) = attempt($p_conc, '127.0.0.1', '127.0.0.23');
    ok $other == 200 or t_debug("$mode concurrent: another host got $other");

    # One ends (both its ends close): its place is given back.
    my @ends = splice @held, 0, 2;
    close $_ for @ends;
    my $st = 0;
    within(5, sub { ($st) = attempt($p_conc, 'localhost', '127.0.0.24');
                    $st == 200 });
    ok $st == 200 or t_debug("$mode concurrent: after an end, $st");

    # Kill the children holding them: their counts are taken off.
    my @pids = holders($lport, children_of($srv->{pid}));
    ok @pids >= 1 or t_debug("$mode concurrent: no child holds tunnels");
    kill 'KILL', @pids if @pids;
    close_held();
    my @after;
    within(10, sub {
        close_held();
        @after = map { (attempt($p_conc, 'localhost', "127.0.0.$_"))[0] }
                 25, 26;
        "@after" eq '200 200';
    });
    ok "@after" eq '200 200'
        or t_debug("$mode concurrent: after killing @pids: @after");
    close_held();

    # The killed children were the only ones to die.
    my %k = map { $_ => 1 } @pids;
    my @bad = grep { /exit signal|Segmentation|AH00060/
                     && !(/pid (\d+) exit signal Killed/ && $k{$1}) }
              split /\n/, log_since($start, $srv->{error_log});
    ok !@bad or t_debug("unexpected: @bad");
}

# --- The refusals were logged with their tag. ---
{
    my $text = log_since($start, $srv->{error_log});
    ok $text =~ /CT00340: tunnel refused: client 127\.0\.0\.1 is over ConnectTunnelClientRate/
        or t_debug("$mode: no client-rate refusal logged");
    ok $text =~ /CT00340: tunnel refused: destination 'localhost' is over ConnectTunnelDestinationRate/
        or t_debug("$mode: no destination-rate refusal logged");
    ok $text =~ /CT00060: tunnel refused: destination 'localhost' already has 2 tunnels/
        or t_debug("$mode: no destination-limit refusal logged");
    ok $srv->stop;
}
