<#
.SYNOPSIS
    Set up a fresh Windows AI PC to build and verify with aipc, idempotently, then run `aipc doctor`.

.DESCRIPTION
    Installs with winget, each only when missing or older than the pinned minimum:
      Python (the newest version in [python] wheel_versions of the pins), Git, Visual Studio Build Tools
      (the pinned major version, with the C++ workload, the x64 MSVC tools, the Spectre-mitigated libraries and the
      pinned Windows SDK), CMake, Ninja, and NuGet when the pinned onnxruntime-genai needs nuget.exe on PATH (>= 0.16).
    Enables Win32 long paths (the only step that asks for elevation, in a separate elevated process) and git's
    core.longpaths, creates a venv with aipc installed editable, and runs `aipc doctor`.
    Every version comes from the pins file (src/aipc/pins.toml), read by a small TOML reader below.
    -WhatIf prints what it would do and changes nothing.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File scripts\bootstrap-windows.ps1 -WhatIf
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    # the pins file (default: the one in this checkout; $env:AIPC_PINS overrides, as for aipc itself)
    [string]$Pins = $(if ($env:AIPC_PINS) { $env:AIPC_PINS } else { Join-Path $PSScriptRoot '..\src\aipc\pins.toml' }),
    # the venv that gets aipc (editable)
    [string]$Venv = (Join-Path $PSScriptRoot '..\.venv'),
    # do not run aipc doctor at the end
    [switch]$NoDoctor
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$Repo = (Resolve-Path (Join-Path $PSScriptRoot '..')).Path

function Fail([string]$Message, [string]$Hint) {
    Write-Host "bootstrap-windows: error: $Message" -ForegroundColor Red
    if ($Hint) { Write-Host "  hint: $Hint" }
    exit 2
}

# --- pins: a small reader for `key = "value"` and `key = ["a", "b"]` in [section] -------------------------------------
if (-not (Test-Path -LiteralPath $Pins -PathType Leaf)) {
    Fail "pins file $Pins does not exist" 'run from an aipc checkout or pass -Pins FILE'
}
$PinLines = Get-Content -LiteralPath $Pins -Encoding UTF8

function Get-Pin([string]$Section, [string]$Key) {
    $current = ''
    foreach ($raw in $PinLines) {
        $line = ($raw -replace '\s+#.*$', '').Trim()
        if ($line -match '^\[\[?([^\]]+)\]\]?$') { $current = $Matches[1].Trim(); continue }
        if ($current -ne $Section) { continue }
        if ($line -match '^"?([A-Za-z0-9_.\-]+)"?\s*=\s*(.+)$' -and $Matches[1] -eq $Key) {
            $value = $Matches[2].Trim()
            if ($value -match '^\[(.*)\]$') {
                return @($Matches[1] -split ',' | ForEach-Object { $_.Trim().Trim('"') } | Where-Object { $_ })
            }
            return $value.Trim('"')
        }
    }
    Fail "$Pins has no key '$Key' in [$Section]" "add $Key = `"...`" to [$Section] (see src/aipc/pins.toml)"
}

$CmakeMin = Get-Pin 'toolchain' 'cmake_min'
$NinjaMin = Get-Pin 'toolchain' 'ninja_min'
# the CMake and Ninja the builds run with (aipc installs them into its build venv); a missing or too old system
# CMake/Ninja is installed at this version too
$CmakePin = Get-Pin 'build_tools' 'cmake'
$NinjaPin = Get-Pin 'build_tools' 'ninja'
$PythonMin = Get-Pin 'toolchain' 'python_min'
$PythonMax = Get-Pin 'toolchain' 'python_max'
$VsMajor = [int](Get-Pin 'toolchain' 'visual_studio')
$VsYear = Get-Pin 'toolchain' 'visual_studio_year'
$MsvcMin = Get-Pin 'toolchain' 'msvc_toolset_min'
$SdkMin = Get-Pin 'toolchain' 'windows_sdk_min'
$WheelPythons = @(Get-Pin 'python' 'wheel_versions')
$PythonWant = ($WheelPythons | Sort-Object { [version]$_ } | Select-Object -Last 1)

# the VS installer component of the pinned SDK: Windows11SDK.<build> from build 22000 on, else Windows10SDK.<build>
$SdkBuild = ([version]$SdkMin).Build
$SdkComponent = if ($SdkBuild -ge 22000) { "Microsoft.VisualStudio.Component.Windows11SDK.$SdkBuild" }
                else { "Microsoft.VisualStudio.Component.Windows10SDK.$SdkBuild" }
# the same list as src/aipc/platforms/windows.py VS_COMPONENTS (aipc doctor checks each; tests/test_bootstrap.py
# keeps the two equal), plus the pinned SDK:
#   VCTools: MSBuild and the Visual Studio generator ORT's and genai's build.py use by default;
#   VC.Tools.x86.x64: the x64 MSVC compiler (>= the pinned toolset);
#   VC.Runtimes.x86.x64.Spectre: genai's cmake/msvc_security.cmake compiles with /Qspectre, and MSBuild then needs
#   the Spectre-mitigated libraries (error MSB8040 without them); --includeRecommended does not bring them
$VsComponents = @(
    'Microsoft.VisualStudio.Workload.VCTools',
    'Microsoft.VisualStudio.Component.VC.Tools.x86.x64',
    'Microsoft.VisualStudio.Component.VC.Runtimes.x86.x64.Spectre',
    $SdkComponent
)

Write-Host "aipc bootstrap (Windows), pins: $Pins"
Write-Host ("pinned: Python $PythonWant (range $PythonMin - $PythonMax), Visual Studio $VsYear ($VsMajor.x) with MSVC " +
            ">= $MsvcMin and Windows SDK >= $SdkMin, CMake >= $CmakeMin, Ninja >= $NinjaMin (the builds: CMake $CmakePin, Ninja " +
            "$NinjaPin in aipc's build venv)")
if ($WhatIfPreference) { Write-Host 'WhatIf: nothing is changed' }

# --- helpers ---------------------------------------------------------------------------------------------------------
function Test-VersionAtLeast([string]$Have, [string]$Min) {
    if (-not $Have) { return $false }
    return ([version]$Have) -ge ([version]$Min)
}

function Invoke-Probe([scriptblock]$Block) {
    # run a native probe whose stderr and failure are expected: with 'Stop', Windows PowerShell 5.1 turns a native
    # command's stderr line into a terminating error; $LASTEXITCODE is left for the caller
    $saved = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try { & $Block 2>$null } finally { $ErrorActionPreference = $saved }
}

function Get-ToolVersion([string]$Command) {
    $cmd = Get-Command $Command -ErrorAction SilentlyContinue
    if (-not $cmd) { return $null }
    $out = (Invoke-Probe { & $cmd.Source --version } | Out-String)
    if ($out -match '(\d+\.\d+(\.\d+)?)') { return $Matches[1] }
    return $null
}

function Update-SessionPath {
    $machine = [Environment]::GetEnvironmentVariable('Path', 'Machine')
    $user = [Environment]::GetEnvironmentVariable('Path', 'User')
    $env:Path = "$machine;$user"
}

function Test-WingetInstalled([string]$Id) {
    if (-not (Get-Command winget -ErrorAction SilentlyContinue)) { return $false }
    Invoke-Probe { & winget list --id $Id --exact --accept-source-agreements } | Out-Null
    return ($LASTEXITCODE -eq 0)
}

function Install-WingetPackage([string]$Id, [string]$Why, [string]$Override, [string]$Verb = 'install',
                               [string]$Version) {
    if (-not (Get-Command winget -ErrorAction SilentlyContinue)) {
        Fail 'winget is not available' 'install "App Installer" from the Microsoft Store, then rerun'
    }
    $wingetArgs = @($Verb, '--id', $Id, '--exact', '--source', 'winget', '--silent',
                    '--accept-package-agreements', '--accept-source-agreements')
    if ($Override) { $wingetArgs += @('--override', $Override) }
    if ($Version) { $wingetArgs += @('--version', $Version) }
    if ($PSCmdlet.ShouldProcess("$Id ($Why)", "winget $($wingetArgs -join ' ')")) {
        & winget @wingetArgs
        if ($LASTEXITCODE -ne 0) { Fail "winget $Verb $Id failed (exit $LASTEXITCODE)" "run: winget $($wingetArgs -join ' ')" }
        Update-SessionPath
    }
}

# --- 1. Python -------------------------------------------------------------------------------------------------------
function Find-Python {
    # the py launcher's pinned version first, then python on PATH (never the Microsoft Store stub in WindowsApps)
    if (Get-Command py -ErrorAction SilentlyContinue) {
        $exe = Invoke-Probe { & py "-$PythonWant" -c 'import sys; print(sys.executable)' }
        if ($LASTEXITCODE -eq 0 -and $exe) { return "$exe".Trim() }
    }
    $cmd = Get-Command python -ErrorAction SilentlyContinue
    if ($cmd -and $cmd.Source -notmatch '\\WindowsApps\\') {
        $ver = Invoke-Probe { & $cmd.Source -c 'import sys; print("%d.%d" % sys.version_info[:2])' }
        if ($ver -and (Test-VersionAtLeast $ver $PythonMin) -and ([version]$ver -le [version]$PythonMax)) {
            return $cmd.Source
        }
    }
    return $null
}

$Python = Find-Python
if ($Python) {
    Write-Host "ok: Python $Python"
} else {
    Install-WingetPackage "Python.Python.$PythonWant" "Python $PythonWant from the pins"
    $Python = Find-Python
}

# --- 2. Git, CMake, Ninja, NuGet -------------------------------------------------------------------------------------
if (Get-Command git -ErrorAction SilentlyContinue) { Write-Host 'ok: git' }
else { Install-WingetPackage 'Git.Git' 'Git' }

$tools = @(
    @{ Command = 'cmake'; Id = 'Kitware.CMake'; Min = $CmakeMin; Pin = $CmakePin },
    @{ Command = 'ninja'; Id = 'Ninja-build.Ninja'; Min = $NinjaMin; Pin = $NinjaPin }
)
foreach ($t in $tools) {
    $have = Get-ToolVersion $t.Command
    if (Test-VersionAtLeast $have $t.Min) { Write-Host "ok: $($t.Command) $have (pins: >= $($t.Min); the builds use $($t.Pin) from aipc's build venv)" }
    elseif ($have) {
        Write-Host "$($t.Command) $have is older than the pinned $($t.Min): upgrading to $($t.Pin) ([build_tools])"
        Install-WingetPackage $t.Id "$($t.Command) $($t.Pin)" -Verb 'upgrade' -Version $t.Pin
    } else { Install-WingetPackage $t.Id "$($t.Command) $($t.Pin)" -Version $t.Pin }
}

# nuget.exe on PATH: onnxruntime-genai 0.16 restores the DXC package with find_program(nuget) (cmake/ortlib.cmake);
# 0.12-0.15.2 download nuget.exe 5.3.0 themselves (cmake/external/onnxruntime_external_deps.cmake), and aipc's
# --ort-release nuget route downloads the .nupkg over HTTPS, so the pinned genai decides (as `aipc doctor` does)
$GenaiPin = Get-Pin 'onnxruntime_genai' 'version'
$GenaiNeedsNuget = ([version](($GenaiPin -split '[^0-9.]')[0].TrimEnd('.'))) -ge [version]'0.16'
if (-not $GenaiNeedsNuget) { Write-Host "ok: nuget not needed (the pinned onnxruntime-genai $GenaiPin downloads nuget.exe itself)" }
elseif ((Get-Command nuget -ErrorAction SilentlyContinue) -or (Test-WingetInstalled 'Microsoft.NuGet')) { Write-Host 'ok: nuget' }
else { Install-WingetPackage 'Microsoft.NuGet' "nuget.exe on PATH (the pinned onnxruntime-genai $GenaiPin restores DXC with it)" }

# --- 3. Visual Studio Build Tools with the C++ workload and the Windows SDK --------------------------------------------
$VsWhere = Join-Path ${env:ProgramFiles(x86)} 'Microsoft Visual Studio\Installer\vswhere.exe'
$VsRange = "[$VsMajor,$($VsMajor + 1))"

function Get-VisualStudio {
    if (-not (Test-Path -LiteralPath $VsWhere)) { return $null }
    $path = & $VsWhere -latest -products * -version $VsRange -requires 'Microsoft.VisualStudio.Component.VC.Tools.x86.x64' -property installationPath
    if (-not $path) { return $null }
    $path = "$path".Trim()
    $msvcFile = Join-Path $path 'VC\Auxiliary\Build\Microsoft.VCToolsVersion.default.txt'
    $msvc = if (Test-Path -LiteralPath $msvcFile) { (Get-Content -LiteralPath $msvcFile -TotalCount 1).Trim() } else { $null }
    # every component of the list, in that installation (the SDK is checked on disk by Test-WindowsSdk)
    $all = @(& $VsWhere -products * -version $VsRange -requires ($VsComponents | Where-Object { $_ -ne $SdkComponent }) -property installationPath)
    $complete = (@($all | ForEach-Object { "$_".Trim() }) -contains $path)
    return @{ Path = $path; Msvc = $msvc; Complete = $complete }
}

function Test-WindowsSdk {
    # a Windows 10/11 SDK >= the pinned minimum with d3d12.h (DirectML needs it)
    $include = Join-Path ${env:ProgramFiles(x86)} 'Windows Kits\10\Include'
    if (-not (Test-Path -LiteralPath $include)) { return $null }
    $found = Get-ChildItem -LiteralPath $include -Directory |
        Where-Object { $_.Name -match '^\d+\.\d+\.\d+\.\d+$' -and ([version]$_.Name -ge [version]$SdkMin) -and
                       (Test-Path -LiteralPath (Join-Path $_.FullName 'um\d3d12.h')) } |
        Sort-Object { [version]$_.Name } | Select-Object -Last 1
    if ($found) { return $found.Name }
    return $null
}

$vs = Get-VisualStudio
$sdk = Test-WindowsSdk
$addArgs = ($VsComponents | ForEach-Object { "--add $_" }) -join ' '
if ($vs -and $vs.Complete -and (Test-VersionAtLeast $vs.Msvc $MsvcMin) -and $sdk) {
    Write-Host "ok: Visual Studio $VsYear at $($vs.Path), MSVC $($vs.Msvc), Windows SDK $sdk, components: $($VsComponents -join ', ')"
} elseif ($vs) {
    # installed but missing the toolset, the SDK or a component: add them to that installation (the installer elevates)
    $installer = Join-Path ${env:ProgramFiles(x86)} 'Microsoft Visual Studio\Installer\setup.exe'
    $modify = "modify --installPath `"$($vs.Path)`" $addArgs --includeRecommended --passive --norestart"
    if ($PSCmdlet.ShouldProcess($vs.Path, "VS installer $modify (MSVC $($vs.Msvc) / SDK $sdk / all components: $($vs.Complete); pins: MSVC >= $MsvcMin, SDK >= $SdkMin)")) {
        $p = Start-Process -FilePath $installer -ArgumentList $modify -Wait -PassThru
        if ($p.ExitCode -notin 0, 3010) { Fail "the Visual Studio installer failed (exit $($p.ExitCode))" "run it by hand: `"$installer`" $modify" }
    }
} else {
    $override = "--wait --passive --norestart $addArgs --includeRecommended"
    Install-WingetPackage "Microsoft.VisualStudio.$VsYear.BuildTools" "Visual Studio $VsYear Build Tools: $($VsComponents -join ', ')" $override
}

# --- 4. long paths (the one elevated step) -----------------------------------------------------------------------------
$FsKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\FileSystem'
$longPaths = (Get-ItemProperty -Path $FsKey -Name LongPathsEnabled -ErrorAction SilentlyContinue)
if ($longPaths -and $longPaths.LongPathsEnabled -eq 1) {
    Write-Host 'ok: Win32 long paths are enabled'
} elseif ($PSCmdlet.ShouldProcess("$FsKey LongPathsEnabled=1", 'enable Win32 long paths (elevated)')) {
    $set = "Set-ItemProperty -Path '$FsKey' -Name LongPathsEnabled -Value 1 -Type DWord"
    $principal = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
    if ($principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        Invoke-Expression $set
    } else {
        Write-Host 'asking for elevation to enable long paths (only this registry value is changed)'
        try {
            $p = Start-Process -FilePath 'powershell.exe' -Verb RunAs -Wait -PassThru `
                -ArgumentList @('-NoProfile', '-ExecutionPolicy', 'Bypass', '-Command', $set)
        } catch {
            Fail "elevation was declined ($($_.Exception.Message))" "run as administrator: $set"
        }
        if ($p.ExitCode -ne 0) { Fail "enabling long paths failed (exit $($p.ExitCode))" "run as administrator: $set" }
    }
}
if (Get-Command git -ErrorAction SilentlyContinue) {
    $gitLong = Invoke-Probe { & git config --global --get core.longpaths }
    if ($gitLong -eq 'true') { Write-Host 'ok: git core.longpaths' }
    elseif ($PSCmdlet.ShouldProcess('git config --global core.longpaths true', 'set')) { & git config --global core.longpaths true }
}

# --- 5. the NPU driver ------------------------------------------------------------------------------------------------
$NpuMin = Get-Pin 'drivers' 'npu_genai_min_windows'
Write-Host "NPU: install or update the Intel NPU driver (>= $NpuMin for OpenVINO GenAI on NPU) from Intel's download"
Write-Host '     center ("Intel NPU Driver - Windows"); Device Manager > Neural processors shows "Intel(R) AI Boost".'

# --- 6. venv with aipc, then aipc doctor -------------------------------------------------------------------------------
$VenvPython = Join-Path $Venv 'Scripts\python.exe'
if (Test-Path -LiteralPath $VenvPython) { Write-Host "ok: venv $Venv" }
elseif ($PSCmdlet.ShouldProcess($Venv, "$Python -m venv")) {
    if (-not $Python) { Fail "no Python $PythonWant found after installing it" 'open a new terminal (PATH changed) and rerun' }
    & $Python -m venv $Venv
    if ($LASTEXITCODE -ne 0) { Fail "$Python -m venv $Venv failed (exit $LASTEXITCODE)" "run: $Python -m venv $Venv" }
}
$aipcInstalled = $false
if (Test-Path -LiteralPath $VenvPython) {
    Invoke-Probe { & $VenvPython -c 'import aipc' } | Out-Null
    $aipcInstalled = ($LASTEXITCODE -eq 0)
}
if ($aipcInstalled) {
    Write-Host "ok: aipc is installed in $Venv"
} elseif ($PSCmdlet.ShouldProcess($Venv, "pip install -e $Repo")) {
    & $VenvPython -m pip install -e $Repo
    if ($LASTEXITCODE -ne 0) { Fail 'pip install -e failed' "run: $VenvPython -m pip install -e $Repo" }
}

if ($NoDoctor) { Write-Host 'skipping aipc doctor (-NoDoctor)'; exit 0 }
if ($PSCmdlet.ShouldProcess('this machine', "$VenvPython -m aipc doctor")) {
    Write-Host "+ $VenvPython -m aipc doctor"
    & $VenvPython -m aipc doctor
    exit $LASTEXITCODE
}
exit 0
