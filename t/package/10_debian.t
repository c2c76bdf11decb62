# The Debian package on this machine's own apache2, the way an admin uses
# it: `make deb` builds it; its contents are checked (the module, a .load
# that depends on proxy and conflicts with proxy_connect, a .conf that
# enables nothing); `apt-get install ./...deb` installs it and enables
# nothing; a2enmod refuses it beside proxy_connect and pulls in proxy
# otherwise; a site on a loopback port of the suite's range makes the
# system apache2 (started with apache2ctl, not systemd) a forward proxy
# that tunnels curl to the test server's TLS origin, announces the
# package's version under ServerTokens Full and refuses clients outside
# its Require; then a2dissite, a2dismod, apt-get purge, and neither the
# package's files nor any change to /etc/apache2 or to a2enmod's records
# in /var/lib/apache2 may be left.
#
# It changes the machine, so it runs as root only, once (in the default
# relay run), when the system apache2 is down and the package is not
# installed.  A guard stops apache2, purges the package and restores both
# directories from a snapshot whenever the test ends, failed or not.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Cwd ();
use Digest::SHA ();
use File::Find ();
use File::Temp ();
use IO::Socket::INET;
use List::Util qw(max);
use POSIX ();
use Time::HiRes qw(time sleep);
use CT::Server qw(suite_mode wait_until);
use CT::Client qw(ca_file run_cmd vhost_port);

my $PKG = 'libapache2-mod-connect-tunnel';
my $SITE = 'ct-package-test';
my @STATE_DIRS = ('/etc/apache2', '/var/lib/apache2');
my $PIDFILE = '/var/run/apache2/apache2.pid';
my $TOP = Cwd::abs_path("$FindBin::Bin/../..");

# apache2ctl must start httpd itself, not hand over to systemctl.
$ENV{APACHE_STARTED_BY_SYSTEMD} = 1;
$ENV{DEBIAN_FRONTEND} = 'noninteractive';

sub installed {
    my $r = run_cmd(cmd => ['dpkg-query', '-W', '-f=${Status}', $PKG]);
    return $r->{rc} == 0 && $r->{out} =~ /\binstalled$/;
}

sub apache2_pid {
    open my $fh, '<', $PIDFILE or return;
    my $pid = <$fh> // '';
    chomp $pid;
    return $pid =~ /^\d+$/ && kill(0, $pid) ? $pid : undef;
}

sub enabled { -e "/etc/apache2/mods-enabled/$_[0].load" }

sub which { (grep { -x "$_/$_[0]" } split /:/, $ENV{PATH})[0] }

sub why_skip {
    return 'runs once, in the default relay run (this is the '
           . suite_mode() . ' run)' if suite_mode() ne 'reactor';
    return 'installs a package on this machine: run the suite as root'
        if $> != 0;
    for my $tool (qw(dpkg-buildpackage dh dh_apache2 apt-get a2enmod
                     a2ensite apache2ctl curl make)) {
        return "needs $tool (./bootstrap installs debhelper, dpkg-dev "
               . 'and apache2-dev)' unless which($tool);
    }
    return "needs $TOP/Makefile (run ./configure)" unless -f "$TOP/Makefile";
    return 'needs the system apache2 configuration in /etc/apache2'
        unless -f '/etc/apache2/apache2.conf';
    return 'the system apache2 is running; the test starts and stops it'
        if apache2_pid();
    return 'proxy_connect is enabled; the test enables proxy_connect_tunnel'
        if -e '/etc/apache2/mods-enabled/proxy_connect.load';
    return "$PKG is installed already; the test would remove it"
        if installed();
    return "/etc/apache2/sites-available/$SITE.conf exists"
        if -e "/etc/apache2/sites-available/$SITE.conf";
    return;
}

my $why = why_skip();
plan skip_all => $why if $why;
plan tests => 33, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 900;

my $tmp = File::Temp::tempdir('ct-package-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);

############################################################################
# Snapshot and guard.

# Every path under a directory with its type, mode, owner and content (or
# link target): equal manifests mean nothing changed.
sub manifest {
    my $dir = shift;
    my %m;
    return \%m unless -e $dir;
    File::Find::find({ no_chdir => 1, wanted => sub {
        my @st = lstat $_ or return;
        my $what = -l _ ? 'link ' . readlink($_)
                 : -d _ ? 'dir'
                 : 'file ' . Digest::SHA->new(256)->addfile($_)->hexdigest;
        $m{$_} = sprintf '%o %d:%d %s', $st[2], $st[4], $st[5], $what;
    } }, $dir);
    return \%m;
}

# a2enmod's records without the directories it creates on first use and
# never removes (module/enabled_by_admin, ...).
sub records {
    my $m = manifest(shift);
    return { map { $_ => $m->{$_} } grep { $m->{$_} !~ / dir$/ } keys %$m };
}

sub manifest_diff {
    my ($old, $new) = @_;
    my %all = (%$old, %$new);
    return map { "$_: " . ($old->{$_} // 'absent') . ' -> '
                 . ($new->{$_} // 'absent') }
           grep { ($old->{$_} // '') ne ($new->{$_} // '') } sort keys %all;
}

my $snap_tar = "$tmp/state.tar";
my @rel = map { substr $_, 1 } grep { -e } @STATE_DIRS;
system('tar', '-C', '/', '-cpf', $snap_tar, @rel) == 0
    or BAIL_OUT("cannot snapshot @STATE_DIRS");
my %before = map { $_ => manifest($_) } @STATE_DIRS;
my $records_before = records('/var/lib/apache2');
my %enabled_before = (proxy => enabled('proxy'));

sub stop_apache2 {
    my $pid = apache2_pid() or return 1;
    run_cmd(cmd => ['apache2ctl', 'stop'], timeout => 30);
    return 1 if wait_until(sub { !kill 0, $pid }, 30);
    kill 'KILL', $pid;
    return 0;
}

sub purge {
    return run_cmd(cmd => ['apt-get', '-o', 'DPkg::Lock::Timeout=120',
                           'purge', '-y', $PKG], timeout => 300);
}

# Whatever happened, leave the machine as it was.
my $guard_pid = $$;
END {
    if (defined $guard_pid && $$ == $guard_pid) {
        my $rc = $?;
        # Disabled first: removing an enabled module makes its maintainer
        # scripts restart apache2 (invoke-rc.d), stopped or not.
        run_cmd(cmd => ['a2dissite', '-q', '-p', $SITE]);
        run_cmd(cmd => ['a2dismod', '-q', '-p', 'proxy_connect_tunnel']);
        stop_apache2();
        purge() if installed();
        stop_apache2();
        for my $dir (grep { manifest_diff(manifest($_), $before{$_}) }
                     @STATE_DIRS) {
            system('rm', '-rf', $dir);
            system('tar', '-C', '/', '-xpf', $snap_tar, substr $dir, 1);
        }
        $? = $rc;
    }
}

sub cmd {
    my ($desc, @cmd) = @_;
    my $r = run_cmd(cmd => \@cmd, timeout => 120);
    diag "$desc: rc $r->{rc}: $r->{out}$r->{err}" if $r->{rc} != 0;
    return $r;
}


############################################################################
# 1. Build the package.

my $version = do {
    open my $fh, '<', "$TOP/debian/changelog" or die "changelog: $!";
    my $first = <$fh>;
    $first =~ /\(([^)]+)\)/ or die "changelog: no version";
    $1;
};
# Built as from a tree without git (a release tarball, or the copy the
# suite runs from when the checkout is not readable by the server's user):
# then the package's copy takes every file but what configure, the build
# and the harness made, the case where a stray generated file can do harm.
my $harness = "$TOP/t/conf/apache_test_config.pm";
my $harness_before = -s $harness;
my $build = run_cmd(cmd => ['env', 'GIT_DIR=/nonexistent', 'make', '-C',
                            $TOP, 'deb'], timeout => 600);
is $build->{rc}, 0, 'make deb builds the package'
    or diag substr("$build->{out}$build->{err}", -3000);
# debian/rules clean runs "make clean" in the copy: with this tree's harness
# configuration copied along, that would clean this tree's test setup.
ok defined $harness_before && (-s $harness // -1) == $harness_before,
   'building the package leaves the running suite\'s own test setup alone';
my ($deb) = glob "$TOP/build/${PKG}_${version}_*.deb";
ok defined $deb && -f $deb,
   "the package carries debian/changelog's version ($version)";
$deb //= '/nonexistent.deb';

############################################################################
# 2. Its contents.

my $list = run_cmd(cmd => ['dpkg-deb', '-c', $deb])->{out};
my @files = map { m{ \./(\S+)$} ? "/$1" : () } grep { !/^d/ } split /\n/,
            $list;
my %in = map { $_ => 1 } @files;
ok $in{'/usr/lib/apache2/modules/mod_connect_tunnel.so'},
   'the module is in /usr/lib/apache2/modules';
ok $in{'/etc/apache2/mods-available/proxy_connect_tunnel.load'},
   'proxy_connect_tunnel.load is in mods-available';
ok $in{'/etc/apache2/mods-available/proxy_connect_tunnel.conf'},
   'proxy_connect_tunnel.conf is in mods-available';

sub member {
    my $path = shift;
    my $r = run_cmd(cmd => ['sh', '-c', 'dpkg-deb --fsys-tarfile "$1" '
                            . '| tar -xOf - ".$2"', 'sh', $deb, $path]);
    return $r->{out};
}
my $load = member('/etc/apache2/mods-available/proxy_connect_tunnel.load');
like $load, qr/^# Depends: proxy$/m, '.load declares "# Depends: proxy"';
like $load, qr/^# Conflicts: proxy_connect$/m,
     '.load declares "# Conflicts: proxy_connect"';
my $conf = member('/etc/apache2/mods-available/proxy_connect_tunnel.conf');
my @active = grep { /\S/ && !/^\s*#/ } split /\n/, $conf;
ok length $conf && !@active, '.conf is only comments (enables nothing)'
    or diag "active lines: @active";
my $depends = run_cmd(cmd => ['dpkg-deb', '-f', $deb, 'Depends'])->{out};
like $depends, qr/\bapache2-api-\d+\b/,
     'it depends on the apache2 module ABI';

############################################################################
# 3. Install: nothing gets enabled.

my $r = cmd('apt-get install', 'apt-get', '-o', 'DPkg::Lock::Timeout=120',
            'install', '-y', $deb);
is $r->{rc}, 0, 'apt-get install ./...deb installs it';
ok installed(), 'dpkg knows it as installed';
ok !enabled('proxy_connect_tunnel'), 'installing it enables nothing';

############################################################################
# 4. a2enmod: the conflict with proxy_connect, the dependency on proxy.

cmd('a2enmod proxy_connect', 'a2enmod', '-q', 'proxy_connect');
$r = run_cmd(cmd => ['a2enmod', '-q', 'proxy_connect_tunnel']);
isnt $r->{rc}, 0, 'a2enmod refuses it while proxy_connect is enabled';
ok !enabled('proxy_connect_tunnel'), '... and leaves it disabled';
cmd('a2dismod proxy_connect', 'a2dismod', '-q', '-p', 'proxy_connect');
if (!$enabled_before{proxy}) {
    cmd('a2dismod proxy', 'a2dismod', '-q', '-p', 'proxy');
}
SKIP: {
    skip 'mod_proxy was enabled before the test', 1 if $enabled_before{proxy};
    ok !enabled('proxy'), 'mod_proxy is off before a2enmod';
}
$r = cmd('a2enmod', 'a2enmod', '-q', 'proxy_connect_tunnel');
is $r->{rc}, 0, 'a2enmod proxy_connect_tunnel succeeds';
ok enabled('proxy_connect_tunnel') && enabled('proxy'),
   '... and enables proxy with it';

############################################################################
# 5. A forward-proxy site on a free port of the suite's range.

my $cfg = Apache::Test::config();
my $port = max(map { $_->{port} // 0 } values %{ $cfg->{vhosts} }) + 1;
for (1 .. 50) {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $port, ReuseAddr => 1,
                                  Listen => 1);
    last if $s;
    $port++;
}
my $tls_port = vhost_port('ct_relay_tls_origin');
open my $fh, '>', "/etc/apache2/sites-available/$SITE.conf" or die $!;
print $fh <<"SITE";
# mod_connect_tunnel's package test; removed when the test ends.
ServerTokens Full
Listen 127.0.0.1:$port
<VirtualHost 127.0.0.1:$port>
    ProxyRequests On
    <Proxy "*">
        Require ip 127.0.0.1
    </Proxy>
    AllowCONNECT $tls_port
    ConnectTunnelAllow 127.0.0.1
    ErrorLog $tmp/error_log
    CustomLog $tmp/access_log combined
</VirtualHost>
SITE
close $fh or die $!;
# Listen on loopback only: ports.conf (restored from the snapshot) would
# open port 80 on every address.
open $fh, '>', '/etc/apache2/ports.conf' or die $!;
print $fh "# emptied by mod_connect_tunnel's package test\n";
close $fh or die $!;
$r = cmd('a2ensite', 'a2ensite', '-q', $SITE);
is $r->{rc}, 0, "a2ensite $SITE";

############################################################################
# 6. Start the system apache2 and tunnel through it.

$r = cmd('apache2ctl start', 'apache2ctl', 'start');
is $r->{rc}, 0, 'apache2ctl start';
my $up = wait_until(sub {
    IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
}, 20);
ok $up, "the system apache2 listens on 127.0.0.1:$port";

my $name = "ct_package_$$.txt";
my $doc = Apache::Test::vars('documentroot') . "/$name";
my $body = "through the packaged module $$\n" x 100;
open $fh, '>', $doc or die "$doc: $!";
print $fh $body;
close $fh or die "$doc: $!";
chmod 0644, $doc;

my @curl = ('curl', '-sS', '--max-time', '30', '--cacert', ca_file());
$r = run_cmd(cmd => [@curl, '-x', "http://127.0.0.1:$port",
                     "https://localhost:$tls_port/$name"], timeout => 40);
is $r->{rc}, 0, 'curl tunnels through the system apache2'
    or diag $r->{err};
is $r->{out}, $body, '... and gets the TLS origin\'s file byte for byte';
unlink $doc;

my $log = wait_until(sub {
    my $text = do { local (@ARGV, $/) = ("$tmp/access_log"); <> // '' };
    $text =~ /CONNECT/ ? $text : undef;
}, 10) // '';
like $log, qr/"CONNECT localhost:$tls_port HTTP\/1\.1" 200 /,
     'the site logged the CONNECT';

$r = run_cmd(cmd => [@curl, '-D', '-', '-o', '/dev/null',
                     "http://127.0.0.1:$port/"], timeout => 40);
like $r->{out}, qr{^Server: .*\bmod_connect_tunnel/\Q$version\E\b}mi,
     'ServerTokens Full: the Server header names the package version';

$r = run_cmd(cmd => [@curl, '--interface', '127.0.0.2', '-x',
                     "http://127.0.0.1:$port",
                     "https://localhost:$tls_port/"], timeout => 40);
like $r->{err}, qr/\b403\b/,
     'a client outside "Require ip" is refused (not an open proxy)';

ok stop_apache2(), 'apache2ctl stop ends the server';

############################################################################
# 7. Disable, purge, and nothing is left.

$r = cmd('a2dissite', 'a2dissite', '-q', '-p', $SITE);
unlink "/etc/apache2/sites-available/$SITE.conf";
$r = cmd('a2dismod', 'a2dismod', '-q', '-p', 'proxy_connect_tunnel');
is $r->{rc}, 0, 'a2dismod proxy_connect_tunnel';
if (!$enabled_before{proxy}) {
    cmd('a2dismod proxy', 'a2dismod', '-q', '-p', 'proxy');
}
system('tar', '-C', '/', '-xpf', $snap_tar, 'etc/apache2/ports.conf') == 0
    or diag 'cannot restore ports.conf';
$r = purge();
is $r->{rc}, 0, "apt-get purge $PKG" or diag $r->{err};
ok !installed(), 'dpkg no longer knows it';
my @left = grep { -e } @files;
is "@left", '', 'none of its files is left';
my @diff = manifest_diff($before{'/etc/apache2'},
                         manifest('/etc/apache2'));
is scalar(@diff), 0, '/etc/apache2 is as it was before'
    or diag join "\n", @diff;
@diff = manifest_diff($records_before, records('/var/lib/apache2'));
is scalar(@diff), 0, 'a2enmod\'s records in /var/lib/apache2 are as before'
    or diag join "\n", @diff;
