# The access log of a tunnel, in every relay: as with stock
# mod_proxy_connect and mod_logio, a CONNECT's CustomLog line is written
# when its tunnel ends (none while it runs, none at a hand-off to a
# reactor), %>s is 200, %I counts the CONNECT request and the bytes the
# client sent, %O the 200 and the bytes it got, %D the tunnel's lifetime,
# and the notes say how it ended.  Standalone httpds:
#   stock: mod_proxy_connect instead of this module, the same exchange:
#     the reference for the counts and timing asserted below.
#   plain: one tunnel held 1.5 s, 1000 bytes echoed, then closed.
#   conditions: ConnectTunnelLogOpen On and CustomLogs with env=tunnel-open,
#     env=!tunnel-open, expr= and a piped log, mod_log_forensic and
#     mod_log_debug loaded: the open record goes only where env= routes
#     it, the end line only to the others; forensic's "-id" follows the
#     tunnel's end; log_debug's message is written at the end.
#   buffered: BufferedLogs On; one tunnel closed by its client and one cut
#     by the server's stop both have their exact lines once httpd stopped.
#   no log: no CustomLog at all: a reactor tunnel keeps nothing for a
#     line and the child starts no logger thread.
#   one log: a format that prints one request header: the child says it
#     keeps what the formats read, starts its logger thread with the
#     first hand-off, and the header is in the line.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(read_bytes read_head write_all);
use CT::Logs ();

sub read_lines { CT::Logs::read_lines(@_) }

plan tests => 5 + 12 + 15 + 7 + 4 + 4;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 150;

my $mode = suite_mode();
my $fmt = 'LogFormat "cport=%{remote}p status=%>s I=%I O=%O D=%D '
        . 'mode=%{tunnel-mode}n end=%{tunnel-end}n '
        . 'up=%{tunnel-bytes-up}n down=%{tunnel-bytes-down}n '
        . 'open=%{tunnel-open}e \\"%r\\"" ct_end';

# A tunnel opened by hand: (socket, its local port, the request's length,
# the reply head's length, the time before the CONNECT was sent).
sub open_tunnel {
    my ($port, $target) = @_;
    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or return;
    my $req = "CONNECT $target HTTP/1.1\r\nHost: $target\r\n"
            . "User-Agent: ct-95\r\n\r\n";
    write_all($s, $req) or return;
    my ($status, undef, $head) = read_head($s, 5);
    return unless defined $status && $status == 200;
    # The head read back without the blank line that ends it.
    return ($s, $s->sockport, length $req, length($head) + 4, $t0);
}

# Lines of a log for the client port, as hashes of their fields.
sub lines_for {
    my ($file, $cport) = @_;
    my @r;
    for (read_lines($file)) {
        my %f = /(\w+)=(\S*)/g;
        push @r, \%f if defined $f{cport} && $f{cport} eq $cport;
    }
    return @r;
}

# Threads of a standalone httpd's children, all of them: a tunnel may go
# to any child.
sub child_threads {
    my ($h) = @_;
    my $n = 0;
    for my $pid (CT::Server::children_of($h ? $h->pid : 0)) {
        opendir my $d, "/proc/$pid/task" or next;
        $n += grep { /^\d+$/ } readdir $d;
    }
    return $n;
}

# The children's thread count once it stops changing for a second (the
# MPM's start threads are gone, every worker runs).
sub settled_threads {
    my ($h) = @_;
    my ($n, $same) = (-1, 0);
    for (1 .. 100) {
        my $m = child_threads($h);
        $same = $m > 1 && $m == $n ? $same + 1 : 0;
        return $m if $same >= 5;
        $n = $m;
        sleep 0.2;
    }
    return $n;
}

# Whether the error log says what a reactor tunnel keeps for its line.
sub keeps {
    my ($h, $re) = @_;
    my @l = grep { /CT00311: / }
            read_lines($h ? $h->file('error_log') : '/nonexistent');
    return 1 if grep { /CT00311: access log: a reactor tunnel keeps $re/ } @l;
    diag 'CT00311 lines: ', explain \@l;
    return 0;
}

# Stop a standalone httpd; true when its error log shows no crash.
sub stop_clean {
    my ($h, $what) = @_;
    $h->stop if $h;
    my $crash = qr/\bAH00052:|exit signal|Segmentation fault|\bAH00060:/;
    my @bad = $h ? grep { /$crash/ } read_lines($h->file('error_log'))
                 : ('no server');
    ok !@bad, "$what: no child crashed" or diag @bad;
}

sub start_httpd {
    my ($conf, @mods) = @_;
    my %o = (conf => $conf, modules => \@mods);
    if (($mods[0] // '') eq 'nolog') {
        %o = (conf => $conf, access_log => 0);
    }
    if (($mods[0] // '') eq 'stock') {
        %o = (conf => $conf, stock => 1);
    }
    my $h = eval { CT::Server->start(%o) };
    diag "httpd: $@" unless $h;
    return $h;
}

my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

# Stock, for reference: what mod_proxy_connect and mod_logio write.
{
    my $h = start_httpd("$fmt\nCustomLog \"\@DIR\@/end_log\" ct_end\n",
                        'stock');
    my $log = $h ? $h->file('end_log') : '/nonexistent';
    my ($s, $cport, $rlen, $hlen) = $h ? open_tunnel($h->port, $target)
                                       : ();
    ok $s && CT::Client::echo_ok($s, 'x' x 1000, 5),
       'stock: a tunnel echoes 1000 bytes';
    sleep 1.5;
    is scalar(lines_for($log, $cport // 0)), 0,
       'stock: no access-log line while the tunnel runs';
    close $s if $s;
    my ($l) = wait_until(sub { (lines_for($log, $cport // 0))[0] }, 10);
    $l //= {};
    is "$l->{status} $l->{I} $l->{O}",
       join(' ', 200, ($rlen // 0) + 1000, ($hlen // 0) + 1000),
       'stock: its line at the end: 200, %I the CONNECT and the bytes up, '
       . '%O the 200 and the bytes down';
    ok +($l->{D} // 0) >= 1.5e6, "stock: %D ($l->{D} us) is the lifetime";
    stop_clean($h, 'stock');
}

# Plain.
{
    my $h = start_httpd("$fmt\nCustomLog \"\@DIR\@/end_log\" ct_end\n");
    my $log = $h ? $h->file('end_log') : '/nonexistent';
    my ($s, $cport, $rlen, $hlen, $t0) = $h ? open_tunnel($h->port, $target)
                                            : ();
    ok $s, "plain ($mode): the tunnel is established";
    ok $s && CT::Client::echo_ok($s, 'x' x 1000, 5),
       'plain: 1000 bytes echoed';
    sleep 1.5;
    is scalar(lines_for($log, $cport // 0)), 0,
       'plain: no access-log line while the tunnel runs';
    close $s if $s;
    my $t1 = time;
    my ($l) = wait_until(sub { (lines_for($log, $cport // 0))[0] }, 10);
    ok $l, 'plain: one line once the tunnel ended';
    $l //= {};
    is $l->{status}, 200, 'plain: %>s is 200';
    is $l->{I}, ($rlen // 0) + 1000,
       'plain: %I is the CONNECT and the bytes sent up, as stock counts';
    is $l->{O}, ($hlen // 0) + 1000,
       'plain: %O is the 200 and the bytes sent down, as stock counts';
    my $life = $t1 - ($t0 // 0);
    ok defined $l->{D} && $l->{D} >= 1.5e6 && $l->{D} <= ($life + 3) * 1e6,
       "plain: %D ($l->{D} us) is the tunnel's lifetime ("
       . int($life * 1000) . ' ms measured)';
    is "$l->{up}/$l->{down}", '1000/1000',
       'plain: the byte notes count the payload';
    like $l->{end} // '', qr/^(closed|client-closed|half-closed|client)/,
         "plain: the end note says how it ended ($l->{end})";
    is $l->{mode}, $mode eq 'reactor' ? 'reactor' : 'worker',
       'plain: the mode note names the relay';
    stop_clean($h, 'plain');
}

# Conditions, the open record, piped logs, forensic and log_debug.
{
    my $h = start_httpd(<<"EOC", 'log_forensic', 'log_debug');
$fmt
LogLevel info connect_tunnel:debug
ConnectTunnelLogOpen On
CustomLog "\@DIR\@/open_log" ct_end env=tunnel-open
CustomLog "\@DIR\@/closed_log" ct_end env=!tunnel-open
CustomLog "\@DIR\@/expr_log" ct_end "expr=%{REQUEST_METHOD} == 'CONNECT' && -z %{ENV:tunnel-open}"
CustomLog "|/bin/sh -c 'exec cat >> \@DIR\@/piped_log'" ct_end env=!tunnel-open
ForensicLog "\@DIR\@/forensic_log"
LogMessage "ct95 end of %{REQUEST_METHOD} from %{REMOTE_ADDR}" hook=log_transaction
EOC
    my $dir = $h ? $h->file('') : '/nonexistent/';
    my ($s, $cport, $rlen, $hlen) = $h ? open_tunnel($h->port, $target) : ();
    ok $s, 'conditions: the tunnel is established';
    ok $s && CT::Client::echo_ok($s, 'y' x 500, 5),
       'conditions: 500 bytes echoed';
    my ($o) = wait_until(sub { (lines_for("$dir/open_log", $cport // 0))[0] },
                         5);
    ok $o && $o->{open} eq '1' && $o->{status} == 200
       && $o->{mode} eq ($mode eq 'reactor' ? 'reactor' : 'worker')
       && $o->{end} eq '-',
       'conditions: the open record is written while the tunnel runs, '
       . 'marked tunnel-open, naming its relay' or diag explain $o;
    is $o && $o->{I}, $rlen // -1, 'conditions: the open record\'s %I is the '
                             . 'CONNECT';
    sleep 0.5;
    is scalar(lines_for("$dir/closed_log", $cport // 0))
       + scalar(lines_for("$dir/expr_log", $cport // 0))
       + scalar(lines_for("$dir/piped_log", $cport // 0)), 0,
       'conditions: env=!tunnel-open, expr= and the piped log have no line '
       . 'yet';
    my @fopen = grep { /^\+/ } read_lines("$dir/forensic_log");
    my ($fid) = @fopen ? $fopen[-1] =~ /^\+([^|]+)\|/ : ();
    ok !grep({ /^-\Q$fid\E$/ } read_lines("$dir/forensic_log"))
       && $fid, 'conditions: forensic has the "+" line, not the "-" yet';
    close $s if $s;
    my ($c) = wait_until(sub {
        (lines_for("$dir/closed_log", $cport // 0))[0] }, 10);
    ok $c && $c->{open} eq '-' && $c->{status} == 200,
       'conditions: the end line goes to env=!tunnel-open, unmarked';
    is $c && $c->{I}, ($rlen // 0) + 500, 'conditions: its %I is exact';
    is $c && $c->{O}, ($hlen // 0) + 500, 'conditions: its %O is exact';
    ok wait_until(sub { lines_for("$dir/expr_log", $cport // 0) }, 5),
       'conditions: expr= (REQUEST_METHOD, no tunnel-open) logs the end';
    ok wait_until(sub { lines_for("$dir/piped_log", $cport // 0) }, 5),
       'conditions: the piped log has the end line';
    is scalar(lines_for("$dir/open_log", $cport // 0)), 1,
       'conditions: one open record, no end line in env=tunnel-open';
    ok $fid && wait_until(sub {
        grep { /^-\Q$fid\E$/ } read_lines("$dir/forensic_log") }, 5)
       && grep({ /ct95 end of CONNECT from 127\.0\.0\.1/ }
               read_lines("$dir/error_log")),
       'conditions: forensic closes its id and log_debug writes at the end';
  SKIP: {
        skip "no reactor in the $mode run", 1 if $mode ne 'reactor';
        ok keeps($h, qr/the whole request, for /),
           'conditions: expr= and mod_log_debug\'s hook keep the whole '
           . 'request';
    }
    stop_clean($h, 'conditions');
}

# BufferedLogs.
{
    my $h = start_httpd("$fmt\nBufferedLogs On\n"
                        . "CustomLog \"\@DIR\@/buf_log\" ct_end\n");
    my $log = $h ? $h->file('buf_log') : '/nonexistent';
    my ($a, $acport, $arlen, $ahlen) = $h ? open_tunnel($h->port, $target)
                                          : ();
    my ($b, $bcport, $brlen, $bhlen) = $h ? open_tunnel($h->port, $target)
                                          : ();
    ok $a && $b && CT::Client::echo_ok($a, 'a' x 300, 5)
       && CT::Client::echo_ok($b, 'b' x 200, 5),
       'buffered: two tunnels echo';
    close $a if $a;
    # A worker's tunnel is not logged when a stop cuts it (as stock's):
    # there the second one is closed by its client too.
    close $b if $b && $mode ne 'reactor';
    sleep 1;
    stop_clean($h, 'buffered');
    close $b if $b && $mode eq 'reactor';
    my ($la) = lines_for($log, $acport // 0);
    my ($lb) = lines_for($log, $bcport // 0);
    is $la && "$la->{I} $la->{O}", ($arlen // 0) + 300 . ' '
                                   . (($ahlen // 0) + 300),
       'buffered: the closed tunnel\'s line, exact %I and %O';
    is $lb && "$lb->{I} $lb->{O}", ($brlen // 0) + 200 . ' '
                                   . (($bhlen // 0) + 200),
       'buffered: the line of the tunnel cut by the stop (reactor) or '
       . 'closed, exact';
    is $la && $la->{status}, 200, 'buffered: %>s 200';
    is scalar(lines_for($log, $acport // 0)), 1,
       'buffered: one line for the closed tunnel';
    is scalar(lines_for($log, $bcport // 0)), 1,
       'buffered: one line for the cut one';
}

# No access log: nothing kept, no logger thread.
{
    my $h = start_httpd("LogLevel info connect_tunnel:debug\n", 'nolog');
    my $before = settled_threads($h);
    my ($s) = $h ? open_tunnel($h->port, $target) : ();
    ok $s && CT::Client::echo_ok($s, 'n' x 100, 5),
       'no log: the tunnel echoes';
  SKIP: {
        skip "no reactor in the $mode run", 2 if $mode ne 'reactor';
        ok keeps($h, qr/nothing \(no access log\)/),
           'no log: the child keeps nothing for a line';
        is child_threads($h), $before,
           "no log: no thread started by the hand-off ($before threads)";
    }
    close $s if $s;
    stop_clean($h, 'no log');
}

# One log printing a request header: the header kept, the thread started
# with the first hand-off.
{
    my $h = start_httpd("LogLevel info connect_tunnel:debug\n"
                        . 'LogFormat "cport=%{remote}p ua=%{User-Agent}i" ua'
                        . "\nCustomLog \"\@DIR\@/ua_log\" ua\n");
    my $log = $h ? $h->file('ua_log') : '/nonexistent';
    my $before = settled_threads($h);
    my ($s, $cport) = $h ? open_tunnel($h->port, $target) : ();
    ok $s && CT::Client::echo_ok($s, 'u' x 100, 5),
       'one log: the tunnel echoes';
  SKIP: {
        skip "no reactor in the $mode run", 1 if $mode ne 'reactor';
        # The hand-off may follow the first bytes by a moment.
        wait_until(sub { child_threads($h) > $before }, 5);
        my $after = child_threads($h);
        ok keeps($h, qr/what the log formats read/) && $after == $before + 1,
           'one log: what the formats read is kept; the logger thread '
           . "started with the hand-off ($before, then $after threads)";
    }
    close $s if $s;
    my ($l) = wait_until(sub { (lines_for($log, $cport // 0))[0] }, 10);
    is $l && $l->{ua}, 'ct-95', 'one log: the header is in the line';
    stop_clean($h, 'one log');
}

$origin->stop;
