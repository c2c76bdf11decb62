# Stopping a server that carries tunnels, on a standalone httpd this test
# starts (the suite's own server must survive): handed-off tunnels belong
# to no worker, so the module keeps a gracefully exiting child alive while
# its reactors drain, until the parent's SIGTERM at the end of
# GracefulShutdownTimeout, and closes them at once on a hard stop.  The
# relay is the one of this run (reactors in the default run), and the
# expectations are stock's in every run.
#   graceful stop (SIGWINCH, GracefulShutdownTimeout 5): three tunnels
#     still echo 1 s and 2 s later, then are closed within 5 + 5 s, and
#     the server exits; with reactors the child logs that it drains them
#     (CT00075), then that the SIGTERM ended the drain (CT00152), and each
#     tunnel ends with a record end=shutdown.  (With tunnels in workers,
#     as with stock, only the parent's SIGKILL ends them, some 9 s after
#     GracefulShutdownTimeout: 5 + 20 s there.)
#   hard stop (SIGTERM): three tunnels are closed within 10 s and the
#     server exits.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time sleep);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok tunnel);
use CT::Logs qw(log_lines tunnel_records);

plan tests => 13;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 100;

my $mode = suite_mode();
my $want = $mode eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

# Seconds until each socket is closed (EOF or reset), or undef at $secs.
sub closed_within {
    my ($secs, @socks) = @_;
    my $t0 = time;
    my %left = map { $_ => $_ } @socks;
    my %at;
    while (%left && time - $t0 < $secs) {
        my @r = IO::Select->new(values %left)->can_read(0.2);
        for my $s (@r) {
            my $n = sysread($s, my $buf, 4096);
            next if $n;
            $at{$s} = time - $t0;
            delete $left{$s};
        }
    }
    return map { $at{$_} } @socks;
}

sub open_three {
    my ($httpd, $what) = @_;
    my @s;
    for my $i (1 .. 3) {
        my ($s, $status) = tunnel($httpd->port, $target);
        push @s, $s if $status && $status == 200;
    }
    ok @s == 3 && !grep({ !echo_ok($_, "hi\n") } @s),
       "$what: three tunnels established and echoing";
    return @s;
}

# Graceful stop.
{
    my $httpd = CT::Server->start(conf => <<'EOC');
GracefulShutdownTimeout 5
StartServers 1
EOC
    my @s = open_three($httpd, 'graceful stop');
    $httpd->signal('WINCH') or die "graceful stop: SIGWINCH: $!";
    sleep 1;
    ok !grep({ !echo_ok($_, "one\n", 2) } @s),
       'graceful stop: every tunnel still echoes 1 s later';
    sleep 1;
    ok !grep({ !echo_ok($_, "two\n", 2) } @s),
       'graceful stop: and 2 s later';
    # Reactors drain until the parent's SIGTERM at GracefulShutdownTimeout;
    # a worker in a tunnel is only ended by the parent's SIGKILL, seconds
    # after that (stock).
    my @at = closed_within($want eq 'reactor' ? 8 : 23, @s);
    diag sprintf 'graceful stop: closed %s s after the 2 s echo',
                 join ', ', map { defined ? sprintf('%.1f', $_) : '-' } @at;
    ok !grep({ !defined } @at),
       'graceful stop: every tunnel is closed within GracefulShutdownTimeout'
       . ($want eq 'reactor' ? ' + 5 s'
                             : ' + 20 s (SIGKILL of the worker)')
       or diag explain \@at;
    ok $httpd->wait_exit(15), 'graceful stop: the server exits';
    my $file = $httpd->file('tunnels_log');
    my @recs = tunnel_records($target, $file);
    SKIP: {
        skip "graceful stop: the tunnels stay in workers ($mode relay): "
             . 'no reactor record, drain or end of drain', 3
            unless $want eq 'reactor';
        is scalar(grep { $_->{mode} eq 'reactor' && $_->{end} eq 'shutdown' }
                  @recs), 3,
           'graceful stop: three records mode=reactor end=shutdown'
           or diag explain \@recs;
        ok scalar log_lines(qr/CT00075: reactor: child exiting, draining 3 /,
                            $httpd->file('error_log')),
           'graceful stop: the child logged that it drains 3 tunnels';
        ok scalar log_lines(qr/CT00152: reactor: drain ended \(SIGTERM\), /,
                            $httpd->file('error_log')),
           'graceful stop: the parent\'s SIGTERM at GracefulShutdownTimeout '
           . 'ended the drain (CT00152)';
    }
    close $_ for @s;
}

# Hard stop.
{
    my $httpd = CT::Server->start(conf => <<'EOC');
GracefulShutdownTimeout 30
StartServers 1
EOC
    my @s = open_three($httpd, 'hard stop');
    sleep 0.5;
    $httpd->signal('TERM') or die "hard stop: SIGTERM: $!";
    my @at = closed_within(10, @s);
    diag sprintf 'hard stop: closed %s s after SIGTERM',
                 join ', ', map { defined ? sprintf('%.1f', $_) : '-' } @at;
    ok !grep({ !defined } @at), 'hard stop: every tunnel is closed within 10 s'
        or diag explain \@at;
    ok $httpd->wait_exit(15), 'hard stop: the server exits';
    my @recs = tunnel_records($target, $httpd->file('tunnels_log'));
    SKIP: {
        skip "hard stop: the tunnels stay in workers ($mode relay): "
             . 'no reactor record or drain', 2
            unless $want eq 'reactor';
        is scalar(grep { $_->{mode} eq 'reactor' && $_->{end} eq 'shutdown' }
                  @recs), 3,
           'hard stop: three records mode=reactor end=shutdown'
           or diag explain \@recs;
        ok !log_lines(qr/CT00075/, $httpd->file('error_log')),
           'hard stop: no drain';
    }
    close $_ for @s;
}

$origin->stop;
