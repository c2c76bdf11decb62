# Timeouts chosen per request through environment variables
# (ct_notes_env configures 30 s for each): proxy-idle-timeout from a
# header by SetEnvIf closes an idle tunnel after 1 s (end=idle in the
# record), proxy-max-lifetime set by SetEnv inside <If> closes a busy
# tunnel after 1 s (end=lifetime), proxy-connect-timeout gives up on an
# origin that never accepts after 1 s (504), and a value that is not a
# time is logged (CT00236) and ignored.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Time::HiRes qw(time sleep);
use CT::Origin qw(full_listener);
use CT::Client qw(raw_connect read_to_eof);
use CT::Logs qw(log_mark log_wait wait_tunnel_record);

plan tests => 8;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;
$SIG{PIPE} = "IGNORE";

my $o = CT::Origin->start('echo');
my $p = $o->port;

for my $case (['idle', "X-Idle-Timeout: 1\r\n", 'idle-timeout'],
              ['lifetime', "X-Short-Life: yes\r\n", 'lifetime']) {
    my ($name, $hdr, $end) = @$case;
    my $tmark = log_mark('tunnels_log');
    my $t0 = time;
    my ($s, $status) = raw_connect('ct_notes_env', "127.0.0.1:$p",
                                   headers => $hdr);
    is $status, 200, "$name: established";
    # The lifetime case keeps bytes moving, so only the lifetime ends it.
    my $closed = 0;
    while (time - $t0 < 10) {
        if ($end eq 'lifetime') {
            last unless print $s 'x';
        }
        vec(my $rin = '', fileno($s), 1) = 1;
        if (select($rin, undef, undef, 0.1)) {
            my $n = sysread $s, my $buf, 4096;
            if (!$n) {
                $closed = 1;
                last;
            }
        }
        sleep 0.1;
    }
    my $took = time - $t0;
    ok $closed && $took < 8,
        sprintf('%s: closed after %.1f s, not the configured 30 s', $name,
                $took);
    close $s;
    my $rec = wait_tunnel_record($tmark, "127.0.0.1:$p", 10) // {};
    is $rec->{end}, $end, "$name: the record says end=$end";
}

my ($l, $fport, $queued) = full_listener();
my $t0 = time;
my ($s, $status) = raw_connect('ct_notes_env', "127.0.0.1:$fport",
                               headers => "X-Connect-Timeout: 1\r\n",
                               wait => 20);
is $status, 504, sprintf('connect timeout 1 s: 504 after %.1f s',
                         time - $t0);
close $s if $s;

my $mark = log_mark('error_log');
($s, $status) = raw_connect('ct_notes_env', "127.0.0.1:$p",
                            headers => "X-Idle-Timeout: soon\r\n");
close $s if $s;
ok log_wait($mark,
            qr/CT00236: environment variable proxy-idle-timeout: 'soon'/, 5,
            log => 'error_log', line => 1), 'a bad value is logged (CT00236)';
$o->stop;
