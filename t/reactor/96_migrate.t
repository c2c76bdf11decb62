# A child that exits gracefully moves its reactor tunnels to a live child
# (ConnectTunnelMigrate, on by default) and exits at once, instead of
# holding its scoreboard slot until its last tunnel ends.  Standalone
# httpds, ServerLimit 4 (a restart whose old children all stayed would
# leave the new generation no slot: AH03490), tunnels to an echo origin:
#   graceful restarts in a row: between and during them every tunnel
#     echoes a numbered, checksummed message every 100 ms and gets back
#     exactly what it sent (no byte lost, duplicated or reordered), no
#     tunnel closes, each restart's old children are gone within 15 s,
#     there is never an AH03490, mod_status counts every tunnel live and
#     moved afterwards (exact), and when the clients end them they end
#     cleanly and mod_status counts none live;
#   MaxConnectionsPerChild: a child that reaches it moves its tunnels and
#     exits;
#   a receiver killed (SIGKILL) while tunnels move to it: the server
#     serves on, the other tunnels echo, and once every tunnel ended the
#     server-wide limit (ConnectTunnelMaxTunnels) admits as many tunnels
#     as before: no count was left behind;
#   ConnectTunnelHandoffMax too small for the tunnels to move: receivers
#     refuse (counted), the rest drain in the old child and still echo;
#   ConnectTunnelMigrate Off: the old children stay while their tunnels
#     live, as before.
# CT_MIGRATE_TUNNELS and CT_MIGRATE_RESTARTS scale the first case (500
# tunnels, 20 restarts; 100 and 5 in the copying run).
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha256_hex);
use IO::Select;
use Socket qw(SHUT_WR);
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(read_to_eof tunnel write_all);
use IO::Socket::INET;
use CT::Logs qw(access_lines log_lines status_auto tunnel_records);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no reactor tunnel to move'
    if suite_mode() ne 'reactor';
plan tests => 39;

# The full scale in the splicing run; the copying run, whose tunnels
# hold no pipe to move, checks the same at a fifth of it.
my $copying = suite_mode(copy => 1) eq 'copy';
my $NT = $ENV{CT_MIGRATE_TUNNELS} // ($copying ? 100 : 500);
my $NR = $ENV{CT_MIGRATE_RESTARTS} // ($copying ? 5 : 20);

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 600;

my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

sub start_server {
    my $extra = shift // '';
    return CT::Server->start(modules => ['status'], conf => <<"EOC");
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 16
MaxSpareThreads 64
Timeout 60
ConnectTunnelIdleTimeout 600
<Location "/server-status">
    SetHandler server-status
</Location>
$extra
EOC
}

sub open_tunnels {
    my ($port, $n, $from) = @_;
    my @t;
    $from //= 1;
    for my $i ($from .. $from + $n - 1) {
        my ($s, $status) = tunnel($port, $target, wait => 10);
        last unless ($status // 0) == 200;
        $s->blocking(0);
        push @t, { s => $s, i => $i, n => 0, sum => '', buf => '',
                   dead => 0, sent => 0, cport => $s->sockport };
    }
    return @t;
}

# One round: every live tunnel sends its next message (number, tunnel,
# a checksum of the message and of everything it sent so far) and must
# get exactly that back within $wait.  Returns the tunnels that failed.
sub echo_round {
    my ($wait, @t) = @_;
    my %want;
    for my $t (grep { !$_->{dead} } @t) {
        $t->{n}++;
        my $body = "t$t->{i} n$t->{n} " . ('x' x ($t->{n} % 50));
        $t->{sum} = sha256_hex($t->{sum} . $body);
        my $msg = "$body " . substr($t->{sum}, 0, 16) . "\n";
        $t->{want} = $msg;
        $t->{buf} = '';
        $t->{sent} += length $msg;
        if (!write_all($t->{s}, $msg)) {
            $t->{dead} = "write: $!";
            next;
        }
        $want{ $t->{s} } = $t;
    }
    my $until = time + $wait;
    while (%want && time < $until) {
        my @r = IO::Select->new(map { $_->{s} } values %want)
                    ->can_read(0.1);
        for my $s (@r) {
            my $t = $want{$s};
            my $n = sysread($s, my $chunk, 65536);
            next if !defined $n && ($!{EAGAIN} || $!{EINTR});
            if (!$n) {
                $t->{dead} = defined $n ? 'closed' : "read: $!";
                delete $want{$s};
                next;
            }
            $t->{buf} .= $chunk;
            next if length $t->{buf} < length $t->{want};
            $t->{dead} = "got '$t->{buf}', sent '$t->{want}'"
                if $t->{buf} ne $t->{want};
            delete $want{$s};
        }
    }
    $_->{dead} ||= 'no echo in time' for values %want;
    return grep { $_->{dead} } @t;
}

# Echo rounds every 100 ms for $secs, or until $done returns true.
sub echo_for {
    my ($secs, $done, @t) = @_;
    my $until = time + $secs;
    my @bad;
    while (time < $until) {
        my $t0 = time;
        @bad = echo_round(10, @t);
        return (1, @bad) if $done && $done->();
        my $rest = 0.1 - (time - $t0);
        sleep $rest if $rest > 0;
    }
    return (0, @bad);
}

sub alive { grep { kill 0, $_ } @_ }

sub end_all {
    my $ended = 0;
    for my $t (@_) {
        shutdown($t->{s}, SHUT_WR);
        $t->{s}->blocking(1);
        my (undef, $eof) = read_to_eof($t->{s}, 5);
        $ended++ if $eof;
        close $t->{s};
    }
    return $ended;
}

sub live_count {
    my %st = status_auto(shift);
    return $st{ConnectTunnelsLive} // -1;
}

# 1. Graceful restarts in a row.
{
    my $httpd = start_server();
    my $port = $httpd->port;
    my @t = open_tunnels($port, $NT);
    is scalar @t, $NT, "restarts: $NT tunnels open";
    my @bad = echo_round(10, @t);
    is scalar @bad, 0, 'restarts: all echo before the first restart';
    my ($slow, $worst) = (0, 0);
    for my $r (1 .. $NR) {
        my @old = children_of($httpd->pid);
        $httpd->signal('USR1');
        my $t0 = time;
        my ($gone) = echo_for(30, sub { !alive(@old) }, @t);
        my $took = time - $t0;
        $worst = $took if $took > $worst;
        $slow++ if !$gone || $took > 15;
        diag sprintf "restart %d: old children gone in %.1f s", $r, $took;
    }
    is $slow, 0, "restarts: after each of $NR restarts the old children "
                 . "were gone within 15 s (worst "
                 . sprintf('%.1f', $worst) . ' s)';
    my @dead = grep { $_->{dead} } @t;
    is scalar @dead, 0, "restarts: every tunnel echoed exactly, every "
                        . '100 ms, through all restarts'
        or diag join "\n", map { "tunnel $_->{i}: $_->{dead}" }
                           @dead[0 .. ($#dead < 4 ? $#dead : 4)];
    my $msgs = 0;
    $msgs += $_->{n} for @t;
    diag "restarts: $msgs messages echoed";
    ok !log_lines(qr/AH03490/, $httpd->file('error_log')),
       'restarts: the scoreboard was never full (no AH03490)';
    my %st = status_auto($port);
    is $st{ConnectTunnelsLive}, $NT,
       "restarts: mod_status counts exactly $NT tunnels live";
    ok +($st{ConnectTunnelsMoved} // 0) >= $NT,
       'restarts: mod_status counts the tunnels moved'
       or diag explain \%st;
    is $st{ConnectTunnelsDrainingChildren}, 0,
       'restarts: no child is draining afterwards';
    is end_all(@t), $NT, 'restarts: every tunnel ends cleanly';
    ok wait_until(sub { live_count($port) == 0 }, 10),
       'restarts: mod_status counts none live once they ended';
    # Each tunnel's access-log line and end-of-tunnel record, written by
    # whichever child ended it, count every byte each way.
    my $lines = wait_until(sub {
        my @l = grep { access_lines($_->{cport}, $httpd->file('access_log'))
                       >= 1 } @t;
        @l == @t ? 1 : 0;
    }, 10);
    my @wrong = grep {
        my $t = $_;
        my @l = grep { $_->{mode} eq 'reactor' }
                access_lines($t->{cport}, $httpd->file('access_log'));
        @l != 1 || $l[0]{up} != $t->{sent} || $l[0]{down} != $t->{sent}
            || $l[0]{end} ne 'closed';
    } @t;
    ok $lines && !@wrong, 'restarts: each tunnel has one access-log line '
                          . 'with its exact bytes each way, end=closed'
        or diag explain [ map { [ $_->{cport}, $_->{sent},
                                  access_lines($_->{cport},
                                      $httpd->file('access_log')) ] }
                          @wrong[0 .. ($#wrong < 2 ? $#wrong : 2)] ];
    my $total = 0;
    $total += $_->{sent} for @t;
    my $recs = wait_until(sub {
        my @r = grep { $_->{end} eq 'closed' }
                tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= $NT ? \@r : undef;
    }, 10);
    my ($up, $down) = (0, 0);
    for (@{ $recs // [] }) {
        $up += $_->{up};
        $down += $_->{down};
    }
    ok $recs && @$recs == $NT && $up == $total && $down == $total,
       "restarts: $NT end-of-tunnel records, bytes each way summing to "
       . 'what the clients sent'
       or diag "records " . scalar(@{ $recs // [] }) . " up $up down "
               . "$down sent $total";
    $httpd->stop;
}

# 2. MaxConnectionsPerChild.
{
    my $httpd = start_server("StartServers 1\nMinSpareThreads 1\n"
                             . "MaxConnectionsPerChild 15\n");
    my $port = $httpd->port;
    my @first = children_of($httpd->pid);
    my @t = open_tunnels($port, 50);
    is scalar @t, 50, 'max connections: 50 tunnels open';
    my ($gone) = echo_for(20, sub { !alive(@first) }, @t);
    diag "max connections: first children @first, now "
         . join(' ', children_of($httpd->pid));
    ok $gone, 'max connections: the children that reached '
              . 'MaxConnectionsPerChild exited while their tunnels live';
    my @dead = grep { $_->{dead} } @t;
    is scalar @dead, 0, 'max connections: every tunnel still echoes '
                        . 'exactly';
    ok scalar log_lines(qr/CT00383: migrate: reactor \d+ moved [1-9]/,
                        $httpd->file('error_log')),
       'max connections: an exiting child says it moved tunnels'
       or diag join '', grep { /CT00(07|15|38)|AH/ }
                        split /^/, $httpd->error_log;
    is end_all(@t), 50, 'max connections: every tunnel ends cleanly';
    $httpd->stop;
}

# 3. A receiver killed while tunnels move to it.
{
    my $httpd = start_server("ConnectTunnelMaxTunnels 120\n");
    my $port = $httpd->port;
    my @t = open_tunnels($port, 100);
    is scalar @t, 100, 'receiver killed: 100 tunnels open';
    my @old = children_of($httpd->pid);
    $httpd->signal('USR1');
    my %old = map { $_ => 1 } @old;
    # The first new child, killed as soon as it listens for tunnels
    # (its abstract socket is in /proc/net/unix): the old children start
    # moving tunnels to it at about that moment.
    my $victim;
    my $ppid = $httpd->pid;
    wait_until(sub {
        ($victim) = grep { !$old{$_} } children_of($ppid);
        return 0 unless $victim;
        open my $fh, '<', '/proc/net/unix' or return 1;
        local $/;
        my $unix = <$fh> // '';
        return index($unix, "\@mod_connect_tunnel/$ppid/$victim") >= 0;
    }, 10);
    kill 'KILL', $victim if $victim;
    ok $victim, 'receiver killed: a new child was killed with SIGKILL '
                . 'during the restart';
    echo_for(3, undef, @t);
    my $lost = grep { $_->{dead} } @t;
    my @live = grep { !$_->{dead} } @t;
    diag "receiver killed: $lost tunnels lost with it";
    ok @live > 0, 'receiver killed: tunnels the victim did not hold still '
                  . 'echo';
    ok wait_until(sub { !alive(@old) }, 20),
       'receiver killed: the old children exited';
    end_all(@t);
    ok wait_until(sub { live_count($port) == 0 }, 15),
       'receiver killed: once the tunnels ended none counts as live';
    my @again = open_tunnels($port, 120);
    is scalar @again, 120, 'receiver killed: the server-wide limit admits '
                           . '120 tunnels again (no count left behind)';
    end_all(@again);
    $httpd->stop;
}

# 4. Receivers too small: the new generation's children take 5 tunnels
# each (ConnectTunnelHandoffMax, lowered by the restart itself), refuse
# the rest, and the old child keeps those and drains them.
{
    my $httpd = start_server("ConnectTunnelHandoffMax 40\n"
                             . "StartServers 1\nMinSpareThreads 1\n");
    my $port = $httpd->port;
    my @t = open_tunnels($port, 30);
    is scalar @t, 30, 'cap: 30 tunnels in the one child';
    my @old = children_of($httpd->pid);
    my $conf = $httpd->file('httpd.conf');
    my $text = do { local (@ARGV, $/) = $conf; <> };
    $text =~ s/ConnectTunnelHandoffMax 40/ConnectTunnelHandoffMax 5/;
    open my $fh, '>', $conf or die "$conf: $!";
    print $fh $text;
    close $fh;
    $httpd->signal('USR1');
    echo_for(4, undef, @t);
    my @dead = grep { $_->{dead} } @t;
    is scalar @dead, 0, 'cap: every tunnel still echoes';
    my %st = status_auto($port);
    diag "cap: moved $st{ConnectTunnelsMoved}, refused "
         . "$st{ConnectTunnelsMoveRefused}";
    ok +($st{ConnectTunnelsMoveRefused} // 0) > 0
       && ($st{ConnectTunnelsMoved} // 0) < 30,
       'cap: full receivers refused tunnels (counted), not all moved';
    ok scalar alive(@old), 'cap: the old child drains what it kept';
    is end_all(@t), 30, 'cap: every tunnel ends cleanly';
    ok wait_until(sub { live_count($port) == 0 }, 10),
       'cap: mod_status counts none live once they ended';
    $httpd->stop;
}

# 6. Idle-child retirement after a load spike: 6 tunnels in the first
# child, 12 stalled requests (headers never finished) take its workers
# and make the MPM start a second child, 6 more tunnels, then the
# requests end and the MPM retires a child (MaxSpareThreads): it moves
# its tunnels and exits.
{
    my $httpd = start_server("StartServers 1\nThreadsPerChild 10\n"
                             . "MaxRequestWorkers 20\nMinSpareThreads 5\n"
                             . "MaxSpareThreads 15\n");
    my $port = $httpd->port;
    my @t = open_tunnels($port, 6);
    my @stalled;
    for (1 .. 12) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 5)
            or last;
        write_all($s, "GET / HTTP/1.1\r\nHost: localhost\r\n") or last;
        push @stalled, $s;
    }
    my $two = wait_until(sub { my @k = children_of($httpd->pid); @k >= 2 },
                         15);
    push @t, open_tunnels($port, 6, 7);
    ok $two && @t == 12, 'retire: a load spike makes a second child; 12 '
                         . 'tunnels open';
    my @kids = children_of($httpd->pid);
    close $_ for @stalled;
    my ($gone) = echo_for(30, sub { alive(@kids) < @kids }, @t);
    ok $gone, 'retire: the MPM retired a child holding tunnels, and it '
              . 'exited';
    my @dead = grep { $_->{dead} } @t;
    is scalar @dead, 0, 'retire: all 12 tunnels still echo exactly';
    is end_all(@t), 12, 'retire: all 12 end cleanly';
    $httpd->stop;
}

# 5. Migration off: the old child stays while its tunnels live.
{
    my $httpd = start_server("ConnectTunnelMigrate Off\n");
    my $port = $httpd->port;
    my @t = open_tunnels($port, 20);
    is scalar @t, 20, 'off: 20 tunnels open';
    my @old = children_of($httpd->pid);
    $httpd->signal('USR1');
    echo_for(4, undef, @t);
    ok scalar alive(@old), 'off: an old child still runs 4 s after the '
                           . 'restart';
    my @dead = grep { $_->{dead} } @t;
    is scalar @dead, 0, 'off: every tunnel still echoes';
    is end_all(@t), 20, 'off: every tunnel ends cleanly';
    ok wait_until(sub { !alive(@old) }, 15),
       'off: the old children exit once their tunnels ended';
    ok !log_lines(qr/CT0038[0-9]/, $httpd->file('error_log')),
       'off: nothing moved';
    $httpd->stop;
}

$origin->stop;
