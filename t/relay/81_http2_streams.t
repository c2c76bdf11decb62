# Many CONNECT streams on one HTTP/2 connection.  mod_http2 processes
# at most 6 streams of a new connection at once and queues the rest where
# the module cannot see them; it raises that limit only as streams end
# well, and a tunnel holds its stream until it ends.  So the module
# refuses a tunnel past ConnectTunnelMaxTunnelsPerH2Connection (default
# 5, one below mod_http2's 6), while a stream can still reach it, rather
# than let the client's later streams wait unanswered:
#   - 20 streams at once, each echoing while all are open: 5 tunnels,
#     byte-exact, and 15 prompt 503s with Proxy-Status
#     connection_limit_reached and CT00180; no stream is left unanswered;
#   - the refusals leave the tunnels going, and the counts are given back:
#     the next 5 on the same server are tunnels again;
#   - with the limit off (0), mod_http2's own limit shows: 6 streams are
#     answered and the other 14 get no answer at all (which is why the
#     default exists).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use JSON::PP ();
use CT::Server qw(free_port wait_until);
use CT::Origin ();
use CT::Logs ();

my $client = "$FindBin::Bin/../bin/h2-connect";
my $python = '/usr/bin/python3';

my $h2_missing = CT::Server::h2_missing();
plan skip_all => $h2_missing if $h2_missing;
plan tests => 14;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

my $off_port = free_port();
my $httpd = CT::Server->start(
    modules => ['http2'],
    conf => <<"EOC");
Protocols h2c http/1.1
H2WindowSize 1048576
Listen 127.0.0.1:$off_port
<VirtualHost 127.0.0.1:$off_port>
    Protocols h2c http/1.1
    ConnectTunnelMaxTunnelsPerH2Connection 0
</VirtualHost>
EOC
my $elog = $httpd->file('error_log');

# Run the client: 20 streams, each sends 64 KiB and holds its END_STREAM
# until every stream has its echo (or its refusal).
sub h2 {
    my (%o) = @_;
    my @cmd = ($python, $client, '--port', $o{port} // $httpd->port,
               '--target', $o{target}, '--streams', $o{streams},
               '--send', 65536, '--expect', 65536, '--hold',
               '--timeout', $o{timeout});
    open my $fh, '-|', @cmd or die "$client: $!";
    my @r = map { JSON::PP::decode_json($_) } grep { /^\{/ } <$fh>;
    close $fh;
    return @r;
}

sub refusals { scalar grep { /CT00180/ } CT::Logs::read_lines($elog) }

my $o = CT::Origin->start('echo');
my $target = "127.0.0.1:" . $o->port;

{
    my @r = h2(target => $target, streams => 20, timeout => 30);
    my @ok = grep { ($_->{status} // 0) == 200 } @r;
    my @no = grep { ($_->{status} // 0) == 503 } @r;
    is scalar @r, 20, 'default: twenty streams reported';
    is scalar(grep { !defined $_->{status} } @r), 0,
       'default: no stream is left unanswered'
       or diag explain [map { $_->{stream} } grep { !defined $_->{status} }
                        @r];
    is scalar @ok, 5, 'default: five streams are tunnels';
    is scalar(grep { $_->{echoed_all_open}
                     && $_->{received_sha256} eq $_->{sent_sha256}
                     && !$_->{reset} } @ok), 5,
       'default: each tunnel echoes byte-exact while all are open'
       or diag explain \@ok;
    is scalar @no, 15, 'default: fifteen streams are refused 503';
    # A complete answer, END_STREAM; mod_http2 then stops the upload the
    # client has not ended with RST_STREAM NO_ERROR (RFC 9113, 8.1).
    is scalar(grep { $_->{ended} && $_->{received} > 0
                     && (!$_->{reset} || $_->{reset_code} == 0) } @no), 15,
       'default: each refusal is a complete answer on its stream'
       or diag explain $no[0];
    ok wait_until(sub { refusals() >= 15 }),
       'default: CT00180 logged for each refusal';
}

{
    # The five tunnels ended: their counts are back, and a refusal did not
    # stick to the server.
    my @r = h2(target => $target, streams => 5, timeout => 30);
    is scalar(grep { ($_->{status} // 0) == 200 && $_->{echoed_all_open}
                     && $_->{received_sha256} eq $_->{sent_sha256} } @r),
       5, 'again: five streams of a new connection are tunnels';
    is refusals(), 15, 'again: no further refusal';
}

{
    my @r = h2(port => $off_port, target => $target, streams => 20,
               timeout => 6);
    my @ok = grep { ($_->{status} // 0) == 200 } @r;
    is scalar @r, 20, 'limit off: twenty streams reported';
    is scalar @ok, 6, "limit off: mod_http2 lets six streams through";
    is scalar(grep { $_->{received} == 65536
                     && $_->{received_sha256} eq $_->{sent_sha256} } @ok),
       6, 'limit off: those six echo';
    is scalar(grep { !defined $_->{status} } @r), 14,
       'limit off: the other fourteen get no answer while the six are open';
    is refusals(), 15, 'limit off: nothing refused';
}

$o->stop;
$httpd->stop;
