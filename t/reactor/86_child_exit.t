# Children that exit gracefully for reasons of their own must not cut
# handed-off tunnels, and the module's drain limit must bound the wait.
# Standalone httpds:
#   MaxConnectionsPerChild 10: the one child exits after its 10th
#     connection: 4 tunnels, then plain requests.  The MPM no longer sees
#     tunnels in reactors (its connection count drops at hand-off), so
#     the module keeps the exiting child alive: all 4 still echo 2 s
#     later, a new child serves a new CONNECT, and the 4 end cleanly
#     (end=closed) when their clients end them.  Same expectations with tunnels in workers (the
#     busy workers keep the child, as with stock).
#   ConnectTunnelDrainTimeout 2, ConnectTunnelMigrate Off (moving the
#     tunnels is 96_migrate.t's), graceful restart (reactors only): the old
#     child drains for 2 s, then closes its tunnels (end=shutdown): each
#     closes no earlier than 1.8 s after the SIGUSR1 (the limit, checked
#     every 100 ms) and no later than 5 s after it, while a tunnel opened
#     in the new generation lives on.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Socket qw(SHUT_WR);
use Time::HiRes qw(time sleep);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_to_eof tunnel);
use CT::Logs qw(access_lines log_lines tunnel_records);

plan tests => 15;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 90;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

# Wait up to $secs for the sockets in %$left to close (EOF or reset),
# moving each that does to %$at with its time since $t0.
sub watch_closes {
    my ($left, $at, $t0, $secs) = @_;
    my $until = time + $secs;
    while (%$left && time < $until) {
        for my $s (IO::Select->new(values %$left)->can_read(0.05)) {
            my $n = sysread($s, my $buf, 4096);
            next if $n;
            $at->{$s} = time - $t0;
            delete $left->{$s};
        }
    }
}

sub end_all {
    my $ended = 0;
    for my $s (@_) {
        shutdown($s, SHUT_WR);
        my (undef, $eof) = read_to_eof($s, 5);
        $ended++ if $eof;
        close $s;
    }
    return $ended;
}

# MaxConnectionsPerChild.
{
    my $httpd = CT::Server->start(conf => <<'EOC');
ConnectTunnelLogOpen On
StartServers 1
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
MinSpareThreads 5
MaxSpareThreads 100
MaxConnectionsPerChild 10
EOC
    my @s;
    for my $i (1 .. 4) {
        my ($s, $status) = tunnel($httpd->port, $target);
        push @s, $s if ($status // 0) == 200 && echo_ok($s, "hi $i\n");
    }
    is scalar @s, 4, 'MaxConnectionsPerChild: 4 tunnels in the first child';
    # Their relays, from the records of their opening.
    my @modes = map {
        my $cport = $_->sockport;
        my $l = wait_until(sub {
            (access_lines($cport, $httpd->file('access_log')))[0];
        }, 5);
        $l ? $l->{mode} : 'none';
    } @s;
    is_deeply \@modes, [($want) x 4],
        'MaxConnectionsPerChild: they run in '
        . ($want eq 'reactor' ? 'reactors' : 'workers');
    # Plain requests (new connections) until the child has had its 10
    # (the start-up probe was one); later ones go to its successor.
    my $gets = grep { (CT::Client::http_get($httpd->port, '/nothing'))[0]
                      // 0 } 1 .. 6;
    is $gets, 6, 'MaxConnectionsPerChild: 6 more connections served';
    sleep 2;
    ok !grep({ !echo_ok($_, "later\n", 3) } @s),
       'MaxConnectionsPerChild: all 4 still echo 2 s later';
    my ($new, $status) = tunnel($httpd->port, $target, wait => 10);
    ok $new && $status == 200 && echo_ok($new, "new\n"),
       'MaxConnectionsPerChild: a new CONNECT is served';
    SKIP: {
        skip "MaxConnectionsPerChild: the tunnels stay in workers ($want "
             . 'relay): no reactor drains them', 1
            unless $want eq 'reactor';
        ok scalar log_lines(qr/CT00075: reactor: child exiting, draining 4 /,
                            $httpd->file('error_log')),
           'MaxConnectionsPerChild: the exiting child drains its 4 tunnels';
    }
    ok !grep({ !echo_ok($_, "still\n", 3) } @s),
       'MaxConnectionsPerChild: the 4 still echo';
    is end_all(@s, $new), 5, 'MaxConnectionsPerChild: all end cleanly';
    my $recs = wait_until(sub {
        my @r = tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= 5 ? \@r : undef;
    });
    is scalar(grep { $_->{end} eq 'closed' && $_->{mode} eq $want }
              @{ $recs // [] }), 5,
       "MaxConnectionsPerChild: 5 records end=closed mode=$want";
    $httpd->stop;
}

# ConnectTunnelDrainTimeout on a graceful restart.
SKIP: {
    skip "ConnectTunnelDrainTimeout bounds reactors only (" . suite_mode()
             . " relay)", 6
        unless $want eq 'reactor';
    my $httpd = CT::Server->start(conf => <<'EOC');
StartServers 1
ConnectTunnelDrainTimeout 2
ConnectTunnelMigrate Off
EOC
    my @s;
    for my $i (1 .. 3) {
        my ($s, $status) = tunnel($httpd->port, $target);
        push @s, $s if ($status // 0) == 200 && echo_ok($s, "hi $i\n");
    }
    is scalar @s, 3, 'drain limit: 3 tunnels';
    # The old tunnels' ends are timed from just before the signal, and
    # watched while the new generation comes up.
    my (%left, %at);
    %left = map { $_ => $_ } @s;
    my $t0 = time;
    $httpd->signal('USR1') or die "drain limit: SIGUSR1: $!";
    my $restarted = wait_until(sub {
        watch_closes(\%left, \%at, $t0, 0.1);
        log_lines(qr/resuming normal operations/, $httpd->file('error_log'))
            >= 2;
    }, 15);
    ok $restarted, 'drain limit: the server restarted';
    my ($new, $status) = tunnel($httpd->port, $target, wait => 10);
    ok $new && $status == 200 && echo_ok($new, "new\n"),
       'drain limit: a tunnel in the new generation';
    watch_closes(\%left, \%at, $t0, 8 - (time - $t0));
    my @at = map { $at{$_} } @s;
    diag sprintf 'drain limit: old tunnels closed %s s after SIGUSR1',
                 join ', ', map { defined ? sprintf('%.2f', $_) : '-' } @at;
    ok !grep({ !defined || $_ < 1.8 || $_ > 5 } @at),
       'drain limit: the old tunnels close 1.8 to 5 s after the SIGUSR1 '
       . '(ConnectTunnelDrainTimeout 2)' or diag explain \@at;
    ok $new && echo_ok($new, "lives\n"),
       'drain limit: the new generation\'s tunnel lives on';
    my $recs = wait_until(sub {
        my @r = grep { $_->{end} eq 'shutdown' }
                tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= 3 ? \@r : undef;
    });
    is scalar @{ $recs // [] }, 3,
       'drain limit: 3 records end=shutdown';
    close $_ for @s;
    end_all($new) if $new;
    $httpd->stop;
}

$origin->stop;
