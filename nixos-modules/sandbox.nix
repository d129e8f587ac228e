# The systemd sandbox every dbcrate unit runs in: no capabilities, no new privileges, a
# read-only system and home, private /tmp and devices, kernel and control-group
# protection, IP and Unix sockets only, no namespaces, no writable-executable memory,
# the @system-service system calls minus privileged ones. `writable` lists the paths
# outside the unit's state directory it may write (directory destinations' roots);
# `families` the socket address families it may use.
{ writable ? [ ], families ? [ "AF_INET" "AF_INET6" "AF_UNIX" ] }:
{
  CapabilityBoundingSet = "";
  AmbientCapabilities = "";
  NoNewPrivileges = true;
  ProtectSystem = "strict";
  ProtectHome = true;
  PrivateTmp = true;
  PrivateDevices = true;
  DevicePolicy = "closed";
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  ProtectProc = "invisible";
  ProcSubset = "pid";
  RestrictAddressFamilies = families;
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  RemoveIPC = true;
  KeyringMode = "private";
  SystemCallArchitectures = "native";
  SystemCallFilter = [ "@system-service" "~@privileged" "~@resources" ];
  SystemCallErrorNumber = "EPERM";
  ReadWritePaths = writable;
}
