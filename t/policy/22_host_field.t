# A CONNECT with the Host header field on more than one line is a bad
# request (RFC 9112 section 3.2), whether the values agree or not and in
# whatever letter case the name is written.  httpd joins repeated fields
# with a comma and then replaces a CONNECT's Host with the target, so the
# module counts the lines as httpd reads them: 400 with Proxy-Status
# error=http_request_error, CT00130 at debug level, nothing dialled.  One
# Host line still tunnels, a GET with two Host lines is left to httpd,
# and the server keeps serving.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Select;
use Time::HiRes qw(sleep);
use CT::Origin qw(accept_within listener);
use CT::Client qw(head_of header_of read_to_eof relays send_raw status_of yes);
use CT::Logs qw(log_mark log_since log_wait);

my $vhost = 'ct_policy_fwd';

# Field lines ({T}: the target); each case gets a listener of its own.
# split: the head is sent in pieces cut inside the Host lines, with a
# pause between them, so a line reaches the server in several reads.
my @bad = (
    { lines => ['Host: {T}', 'Host: {T}'], n => 2,
      desc => 'two Host lines, same value' },
    { lines => ['Host: {T}', 'Host: other.example:443'], n => 2,
      desc => 'two Host lines, different values' },
    { lines => ['host: {T}', 'HOST: {T}'], n => 2,
      desc => 'two Host lines in different letter case' },
    { lines => ['Host: {T}', 'Accept: */*', 'Host: {T}', 'hOsT: {T}'],
      n => 3, desc => 'three Host lines among others' },
    { lines => ['Host: {T}', 'Host: {T}'], n => 2, split => 1,
      desc => 'two Host lines, each split across TCP segments' },
);

plan tests => 4 * @bad + 3 + 4 + 3;

sub head_for {
    my ($target, @lines) = @_;
    return "CONNECT $target HTTP/1.1\r\n"
         . join('', map { (my $l = $_) =~ s/\{T\}/$target/g; "$l\r\n" }
                        @lines)
         . "\r\n";
}

# Send a head whole, or cut inside every "ost" with a pause after.
sub send_head {
    my ($head, $split) = @_;
    return send_raw($vhost, $head) unless $split;
    my @pieces = split /(?<=Ho)(?=st)/i, $head;
    my $s = send_raw($vhost, shift @pieces);
    for my $p (@pieces) {
        sleep 0.2;
        print $s $p;
    }
    return $s;
}

# The head of a response, read until its empty line.
sub read_head {
    my $s = shift;
    my ($got, $sel) = ('', IO::Select->new($s));
    while ($got !~ /\r\n\r\n/ && $sel->can_read(10)) {
        sysread($s, $got, 4096, length $got) or last;
    }
    return $got;
}

# A CONNECT with one Host line: (status, target reached, bytes relayed).
sub good_connect {
    my $l = listener();
    my $target = '127.0.0.1:' . $l->sockport;
    my $s = send_raw($vhost, head_for($target, 'Host: {T}'));
    my $status = status_of(read_head($s));
    my $peer = accept_within($l);
    my $ok = relays($s, $peer);
    close $s;
    return ($status, $peer ? 1 : 0, $ok);
}

for my $c (@bad) {
    my $l = listener();
    my $target = '127.0.0.1:' . $l->sockport;
    my $mark = log_mark();
    my $s = send_head(head_for($target, @{ $c->{lines} }), $c->{split});
    my ($bytes) = read_to_eof($s);
    ok t_cmp(status_of($bytes), 400, "$c->{desc}: status");
    ok t_cmp(header_of(head_of($bytes), 'Proxy-Status') // '',
             qr/;\s*error=http_request_error$/,
             "$c->{desc}: Proxy-Status");
    my $line = "CT00130: CONNECT with more than one Host field "
             . "($c->{n} lines)";
    ok yes(log_wait($mark, qr/\Q$line\E/),
           "$c->{desc}: CT00130 with the count in the error log");
    ok yes(!accept_within($l, 0.2), "$c->{desc}: nothing was dialled");
    close $s;
}

{
    my $mark = log_mark();
    my ($status, $reached, $relayed) = good_connect();
    ok t_cmp($status, 200, 'one Host line: status');
    ok yes($reached && $relayed, 'one Host line: the tunnel carries bytes');
    ok yes(log_since($mark) !~ /CT00130:/, 'one Host line: no CT00130');
}

# Not a CONNECT: whatever httpd answers, the module neither refuses nor
# logs it.
{
    my $mark = log_mark();
    my $s = send_raw($vhost, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           . "Host: 127.0.0.1\r\nConnection: close\r\n\r\n");
    my ($bytes) = read_to_eof($s);
    close $s;
    my $status = status_of($bytes);
    t_debug("GET with two Host lines: httpd answered '$status'");
    ok yes($status =~ /^\d{3}$/, 'GET with two Host lines: a response');
    ok yes(!defined header_of(head_of($bytes), 'Proxy-Status'),
           'GET with two Host lines: no Proxy-Status from the module');
    sleep 0.2;
    my $log = log_since($mark);
    ok yes($log !~ /CT00130:/, 'GET with two Host lines: no CT00130');
    ok yes($log !~ /tunnel-host-fields|connect_tunnel:.*GET/,
           'GET with two Host lines: nothing from the module');
}

# The server keeps serving after every refusal.
{
    my ($status, $reached, $relayed) = good_connect();
    ok t_cmp($status, 200, 'afterwards: status');
    ok yes($reached && $relayed, 'afterwards: the tunnel carries bytes');
    ok yes(log_since(0) !~ /exit signal|segmentation fault/i,
           'no child crashed');
}
