# The end-of-tunnel log as reactors write it.  Standalone httpds:
#   long target: through an upstream proxy (ProxyRemote; a stand-in in
#     this test answers 200 and echoes) a host name of 253 characters,
#     the longest the module takes, plus a port: the tunnel runs in a
#     reactor and its record shows the whole target.
#   stalled log program: ConnectTunnelLog "|/bin/sleep 3600", a program
#     that never reads, one reactor thread, ConnectTunnelIdleTimeout 3:
#     900 short tunnels end (about 150 KB of records, more than a pipe
#     holds); every one works, a tunnel opened afterwards in the same
#     reactor echoes, one left idle is closed by the idle sweep, and the
#     dropped records are counted (mod_status ConnectTunnelsLogDropped,
#     CT00154 in the error log).
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(churn echo_ok read_to_eof tunnel write_all);
use CT::Logs qw(log_lines status_auto tunnel_records);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no reactor writes records'
    if suite_mode() ne 'reactor';
plan tests => 10, need_module('status');

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 120;

# A stand-in upstream proxy: answers any CONNECT with 200, then echoes.
# One forked process per connection, all ended by PID.
sub start_upstream {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 16, ReuseAddr => 1)
        or die "listen: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        $SIG{ALRM} = sub { POSIX::_exit(0) };
        alarm 100;
        while (my $c = $l->accept) {
            my $head = '';
            while ($head !~ /\r\n\r\n/) {
                sysread($c, $head, 4096, length $head) or last;
            }
            syswrite($c, "HTTP/1.1 200 Connection established\r\n\r\n");
            while (sysread($c, my $buf, 65536)) {
                syswrite($c, $buf);
            }
            close $c;
        }
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    return ($pid, $port);
}

# Long target.
{
    my ($up_pid, $up_port) = start_upstream();
    my $host = join('.', 'a' x 63, 'b' x 63, 'c' x 63, 'd' x 53) . '.example';
    my $target = "$host:443";
    my $httpd = CT::Server->start(conf => <<"EOC");
ProxyRemote * http://127.0.0.1:$up_port
ConnectTunnelAllow *.example
EOC
    my ($s, $status) = tunnel($httpd->port, $target, wait => 5);
    ok $s && $status == 200 && echo_ok($s, "long\n", 5),
       'a tunnel to a 253-character host name through the upstream';
    close $s if $s;
    my $rec = wait_until(sub {
        (grep { $_->{mode} eq 'reactor' }
         tunnel_records($target, $httpd->file('tunnels_log')))[0];
    }, 5);
    is length($host), 253, 'the host name has 253 characters';
    is $rec && $rec->{target}, $target,
       'its reactor record shows the whole target';
    $httpd->stop;
    kill 'TERM', $up_pid;
    waitpid $up_pid, 0;
}

# Stalled log program.
{
    my $origin = start_origin();
    my $target = '127.0.0.1:' . $origin->port('echo');
    my $httpd = CT::Server->start(modules => ['status'],
                                          conf => <<'EOC');
ConnectTunnelLog "|/bin/sleep 3600"
ConnectTunnelReactorThreads 1
ConnectTunnelIdleTimeout 3
LogLevel info
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
<Location "/server-status">
    SetHandler server-status
</Location>
EOC
    my $port = $httpd->port;
    # The log program, so that it is ended even if httpd is not.
    # Until it has exec'd, the forked logger still shows httpd's command.
    my $logger = wait_until(sub {
        (grep {
            open my $fh, '<', "/proc/$_/cmdline";
            (<$fh> // '') =~ /^\/bin\/sleep\0/;
        } children_of($httpd->pid))[0];
    }, 5);
    ok $logger, 'the log program runs';
    my ($ok, $bad) = churn(port => $port, target => $target, count => 900,
                           window => 50, secs => 40);
    is $ok, 900, '900 short tunnels all work while nobody reads the log';
    my ($s, $status) = tunnel($port, $target, wait => 5);
    ok $s && $status == 200 && echo_ok($s, "alive\n", 5),
       'a new tunnel in the same reactor echoes';
    my ($idle, $istatus) = tunnel($port, $target, wait => 5);
    ok $idle && $istatus == 200 && echo_ok($idle, "idle\n", 5),
       'another one echoes, then stays idle';
    my (undef, $eof) = $idle ? read_to_eof($idle, 10) : (undef, 0);
    ok $eof, 'the idle sweep closes it (ConnectTunnelIdleTimeout 3)';
    my %st = status_auto($port);
    cmp_ok $st{ConnectTunnelsLogDropped} // 0, '>', 0,
           'status: dropped records are counted';
    ok scalar log_lines(qr/CT00154: tunnel log: \d+ records dropped/,
                        $httpd->file('error_log')),
       'error log: the drop is logged (CT00154)';
    close $s if $s;
    close $idle if $idle;
    $httpd->stop;
    if ($logger && kill 0, $logger) {
        kill 'TERM', $logger;
    }
    $origin->stop;
}
