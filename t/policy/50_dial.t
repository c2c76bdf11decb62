# Dialling the origin fails in three distinct ways, each with its own
# status, log tag and Proxy-Status error type (RFC 9209), where stock httpd
# answers 503 for all of them: a name that does not resolve is 502 with
# CT00028 (dns_error); every address refusing is 502 with CT00027
# (connection_refused); a connect that does not complete within the
# connect timeout (here ProxyTimeout 2) is 504 with CT00026
# (connection_timeout).  Each answer is the server's own HTML error page.
#
# The unresolvable name starts with '-': glibc's resolver refuses such a
# name without sending any query, so no lookup leaves the machine.  The
# connect that times out goes to a loopback listener whose accept queue is
# full, so the kernel drops the proxy's SYNs.
use strict;
use warnings;
use lib 't/lib';
use IO::Socket::IP;
use Apache::Test;
use Apache::TestUtil;
use CT::Origin qw(closed_port full_listener);
use CT::Client qw(head_of header_of read_to_eof send_raw status_of yes);
use CT::Logs qw(log_mark log_wait);

my $vhost = 'ct_policy_dial';

my ($closed, $closed_port) = closed_port();
# A port on ::1 that refuses: bound, not listening.
my $closed6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Proto => 'tcp')
    or die "bind [::1]: $!";
my ($full, $full_port, $queued) = full_listener();

my @cases = (
    { desc => 'unresolvable name', t => '-ct-nx.example:443',
      want => 502, tag => 'CT00028', type => 'dns_error' },
    { desc => 'ipv4 address refusing', t => "127.0.0.1:$closed_port",
      want => 502, tag => 'CT00027', type => 'connection_refused' },
    { desc => 'ipv6 address refusing', t => '[::1]:' . $closed6->sockport,
      want => 502, tag => 'CT00027', type => 'connection_refused' },
    { desc => 'name whose address refuses', t => "localhost:$closed_port",
      want => 502, tag => 'CT00027', type => 'connection_refused' },
    { desc => 'connect timeout (full accept queue)',
      t => "127.0.0.1:$full_port",
      want => 504, tag => 'CT00026', type => 'connection_timeout' },
);

plan tests => 6 * @cases + 1;

# The experiment behind the timeout case: a connect to the full listener
# really does hang (it gives up after its own 1 s timeout).
{
    my $probe = IO::Socket::IP->new(PeerHost => '127.0.0.1',
                                    PeerPort => $full_port, Timeout => 1);
    ok yes(!$probe, 'a connect to the full listener does not complete');
}

for my $c (@cases) {
    my $desc = "$c->{desc} ($c->{t})";
    my $mark = log_mark();
    my $s = send_raw($vhost, "CONNECT $c->{t} HTTP/1.1\r\nHost: x\r\n\r\n");
    my ($bytes, $closed_conn) = read_to_eof($s, 20);
    my $head = head_of($bytes);
    ok t_cmp(status_of($bytes), $c->{want}, "$desc: status");
    my $log = log_wait($mark, qr/$c->{tag}:/);
    ok yes($log, "$desc: $c->{tag} in the error log");
    my @others = grep { $_ ne $c->{tag} } qw(CT00026 CT00027 CT00028);
    ok yes(defined $log && $log !~ /(?:@{[join '|', @others]}):/,
           "$desc: not the other failures' tags");
    ok t_cmp(header_of($head, 'Proxy-Status'),
             qr/;\s*error=\Q$c->{type}\E\b/, "$desc: Proxy-Status");
    ok t_cmp(header_of($head, 'Content-Type'), qr{^text/html},
             "$desc: an HTML error page");
    ok yes($closed_conn, "$desc: the connection is closed");
}
