# Bytes a client sends in the same write as its CONNECT are partly in
# httpd's core input filter when the tunnel starts (what it read past the
# request) and partly still in the socket.  At the hand-off the worker
# takes the input away from the filters without reading more: what the
# core held goes to the reactor as the first client-to-origin bytes, and
# the reactor reads the rest from the socket.  Lost, duplicated or
# reordered bytes at that seam are the failure this test looks for: the
# origin must receive the early bytes exactly once, in order, followed by
# what the client sends after the 200, for a small payload, 60 KB, 64 KiB,
# 64 KiB + 1 and 200 KB (an upload already streaming when the 200 goes
# out).  In the default run every one of them must be handed off
# (access-log note tunnel-mode=reactor).
# Last, early bytes that look like a second HTTP request are tunnel
# payload: the origin gets them verbatim and the access log has one line.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha256_hex);
use IO::Select;
use Time::HiRes qw(sleep);
use Socket qw(SHUT_WR);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(read_bytes read_to_eof tunnel vhost_port write_all);
use CT::Logs qw(access_lines mark_logs tunnel_records);

my @cases = ([small => 100], ['60 KB' => 60 * 1024],
             ['64 KiB' => 64 * 1024], ['64 KiB + 1' => 64 * 1024 + 1],
             ['200 KB' => 200 * 1000]);
plan tests => 7 * @cases + 4;

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;

my $mode = suite_mode();
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');
my $proxy = vhost_port('ct_reactor_main');

# $len bytes in which every offset is distinct: a lost, repeated or
# reordered block changes the text.
sub payload {
    my ($len, $tag) = @_;
    my $p = '';
    my $i = 0;
    $p .= sprintf "%s:%09d;", $tag, $i++ while length $p < $len;
    return substr $p, 0, $len;
}

for my $case (@cases) {
    my ($name, $len) = @$case;
    my $early = payload($len, 'E');
    my $after = payload(5000, 'A');
    my ($s, $status, $rest) = tunnel($proxy, $target, early => $early);
    is $status, 200, "$name: CONNECT with early data is established";
    my $back = $rest . read_bytes($s, length($early) - length($rest));
    ok $back eq $early, "$name: the early bytes come back exactly, in order"
        or diag 'got ' . length($back) . ' bytes of ' . length $early;
    write_all($s, $after);
    my $back2 = read_bytes($s, length $after);
    ok $back2 eq $after, "$name: bytes sent after the 200 follow them";
    shutdown($s, SHUT_WR);
    my ($tail, $ended) = read_to_eof($s);
    ok $ended && $tail eq '',
       "$name: nothing more (no duplicate) before the end of the tunnel"
       or diag 'extra bytes: ' . length $tail;
    my $cport = $s->sockport;
    close $s;

    # The origin's own account of what it received.
    my $total = length($early) + length($after);
    my $rec = wait_until(sub {
        my @r = grep { $_->{bytes} == $total } $origin->records('echo');
        $r[-1];
    });
    ok $rec && $rec->{sha256} eq sha256_hex($early . $after),
       "$name: the origin received the $total bytes once, in order"
       or diag explain [$origin->records('echo')];

    my ($line) = wait_until(sub { my @l = access_lines($cport); $l[0] });
    if ($mode eq 'reactor') {
        is $line && $line->{mode}, 'reactor',
           "$name: the tunnel was handed off with its early data";
    }
    else {
        is $line && $line->{mode}, 'worker', "$name: relayed in its worker";
    }
    # The reactor counts the early bytes it was given as sent upstream.
    my $tr = wait_until(sub {
        my @r = grep { $_->{up} == $total } tunnel_records($target);
        $r[-1];
    });
    ok $tr && $tr->{down} == $total && $tr->{end} eq 'closed',
       "$name: tunnels_log counts up=$total down=$total end=closed"
       or diag explain [tunnel_records($target)];
}

# Early bytes that look like the next request of the connection.
{
    my $early = "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my ($s, $status, $rest) = tunnel($proxy, $target, early => $early);
    is $status, 200, 'HTTP-looking early data: CONNECT is established';
    my $back = $rest . read_bytes($s, length($early) - length($rest));
    is $back, $early, 'HTTP-looking early data: echoed verbatim, not '
                      . 'answered by the proxy';
    my $cport = $s->sockport;
    shutdown($s, SHUT_WR);
    read_to_eof($s);
    close $s;
    my $rec = wait_until(sub {
        (grep { $_->{sha256} eq sha256_hex($early) }
         $origin->records('echo'))[0];
    });
    ok $rec, 'HTTP-looking early data: the origin got exactly those bytes';
    wait_until(sub { access_lines($cport) >= 1 });
    sleep 0.5;
    my @l = access_lines($cport);
    ok @l == 1 && $l[0]->{request} =~ /^CONNECT /,
       'HTTP-looking early data: one access-log line, the CONNECT'
       or diag explain \@l;
}

$origin->stop;
