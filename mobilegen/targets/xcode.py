"""A deterministic writer of Xcode project files (`project.pbxproj`) and shared schemes.

The project is described by `XcodeTarget`s over paths relative to the project folder; `pbxproj`
turns them into the OpenStep property list Xcode reads, the way Xcode itself lays it out: one
section per isa in alphabetical order, objects sorted by ID, keys sorted with `isa` first, and a
`/* comment */` after every reference. Object IDs are 24 hex digits of the SHA-256 of what the
object is (its kind and the paths or names that identify it), so the same project gives the same
IDs and the same bytes every time, and regenerating a project after a model change only touches
the objects that changed. Every string goes through escape.pbxproj_string.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field

from mobilegen.render.escape import pbxproj_string, xml_attr

# objectVersion 56 is Xcode 14's format, read by every Xcode since (Xcode 16's synchronized folders
# would need 77 and are not used: every file is listed, so the project says exactly what it builds).
OBJECT_VERSION = 56
COMPATIBILITY = "Xcode 14.0"
LAST_UPGRADE_CHECK = 1500
CREATED_ON_TOOLS_VERSION = "15.0"

PRODUCT_TYPES = {
    "framework": ("com.apple.product-type.framework", "wrapper.framework", ".framework"),
    "app": ("com.apple.product-type.application", "wrapper.application", ".app"),
    "tests": ("com.apple.product-type.bundle.unit-test", "wrapper.cfbundle", ".xctest"),
}

FILE_TYPES = {
    ".h": "sourcecode.c.h",
    ".m": "sourcecode.c.objc",
    ".mm": "sourcecode.cpp.objcpp",
    ".cpp": "sourcecode.cpp.cpp",
    ".c": "sourcecode.c.c",
    ".png": "image.png",
    ".plist": "text.plist.xml",
    ".xcprivacy": "text.xml",
    ".json": "text.json",
    ".md": "net.daringfireball.markdown",
    ".swift": "sourcecode.swift",
    ".yml": "text.yaml",
    ".metal": "sourcecode.metal",  # shown, never built (the host proof's copy of the embedded library)
    ".txt": "text",
}


def object_id(*key: str) -> str:
    """A stable 24-hex-digit object ID for the object that `key` identifies."""
    return hashlib.sha256("\0".join(key).encode("utf-8")).hexdigest()[:24].upper()


@dataclass(frozen=True)
class Ref:
    """A reference to another object, written as its ID and a comment naming it."""
    id: str
    comment: str


@dataclass
class XcodeTarget:
    name: str
    kind: str  # a key of PRODUCT_TYPES
    sources: list[str] = field(default_factory=list)
    public_headers: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    system_frameworks: list[str] = field(default_factory=list)  # "Metal" for Metal.framework
    link_targets: list[str] = field(default_factory=list)  # framework targets of this project to link
    embed_targets: list[str] = field(default_factory=list)  # ... and to copy into the app's Frameworks/
    settings: dict[str, str | list[str]] = field(default_factory=dict)  # both configurations

    @property
    def product(self) -> str:
        return self.name + PRODUCT_TYPES[self.kind][2]

    @property
    def dependencies(self) -> list[str]:
        return sorted(set(self.link_targets) | set(self.embed_targets))


class _Objects:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[str, dict, str]] = {}  # id -> (isa, fields, comment)

    def add(self, isa: str, key: tuple[str, ...], fields: dict, comment: str) -> Ref:
        oid = object_id(isa, *key)
        if oid in self.objects:
            raise AssertionError(f"{isa} {key} added twice")
        self.objects[oid] = (isa, fields, comment)
        return Ref(oid, comment)


def _value(v, indent: int) -> str:
    if isinstance(v, Ref):
        return f"{v.id} /* {v.comment} */"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return pbxproj_string(v)
    pad = "\t" * indent
    if isinstance(v, list):
        if not v:
            return "(\n" + pad + ")"
        return "(\n" + "".join(f"{pad}\t{_value(x, indent + 1)},\n" for x in v) + pad + ")"
    if isinstance(v, dict):
        return "{\n" + "".join(f"{pad}\t{pbxproj_string(k)} = {_value(x, indent + 1)};\n" for k, x in _sorted(v)) + pad + "}"
    raise TypeError(f"no pbxproj form for {v!r}")


def _inline(v) -> str:
    if isinstance(v, list):
        return "(" + "".join(f"{_inline(x)}, " for x in v) + ")"
    if isinstance(v, dict):
        return "{" + "".join(f"{pbxproj_string(k)} = {_inline(x)}; " for k, x in _sorted(v)) + "}"
    return _value(v, 0)


def _sorted(fields: dict):
    return sorted(fields.items(), key=lambda kv: (kv[0] != "isa", kv[0]))


# Objects Xcode writes on one line.
_INLINE_ISAS = ("PBXBuildFile", "PBXFileReference")


def _serialize(objs: _Objects, root: Ref) -> str:
    lines = ["// !$*UTF8*$!", "{", "\tarchiveVersion = 1;", "\tclasses = {", "\t};",
             f"\tobjectVersion = {OBJECT_VERSION};", "\tobjects = {"]
    for isa in sorted({isa for isa, _, _ in objs.objects.values()}):
        lines += ["", f"/* Begin {isa} section */"]
        for oid in sorted(o for o, (i, _, _) in objs.objects.items() if i == isa):
            _, fields, comment = objs.objects[oid]
            body = {"isa": isa, **fields}
            if isa in _INLINE_ISAS:
                lines.append(f"\t\t{oid} /* {comment} */ = {_inline(body)};")
            else:
                lines.append(f"\t\t{oid} /* {comment} */ = {_value(body, 2)};")
        lines.append(f"/* End {isa} section */")
    lines += ["\t};", f"\trootObject = {root.id} /* {root.comment} */;", "}", ""]
    return "\n".join(lines)


def _file_type(path: str) -> str:
    ext = posixpath.splitext(path)[1]
    return FILE_TYPES.get(ext, "file")


def pbxproj(project: str, targets: list[XcodeTarget], files: list[str], project_settings: dict[str, dict]) -> str:
    """The project.pbxproj text of `<project>.xcodeproj`.

    files: every path (relative to the project folder) shown in the navigator, build inputs or not;
    project_settings: configuration name ("Debug", "Release") -> the project-level build settings.
    """
    objs = _Objects()
    by_name = {t.name: t for t in targets}
    used = {p for t in targets for p in t.sources + t.public_headers + t.resources}
    missing = sorted(used - set(files))
    if missing:
        raise AssertionError(f"build inputs not among the project's files: {missing[:5]}")

    # File references and the group tree mirroring the folders.
    file_refs: dict[str, Ref] = {}
    for path in sorted(files):
        file_refs[path] = objs.add("PBXFileReference", (path,), {
            "lastKnownFileType": _file_type(path), "path": posixpath.basename(path), "sourceTree": "<group>",
        }, posixpath.basename(path))
    product_refs = {t.name: objs.add("PBXFileReference", ("product", t.product), {
        "explicitFileType": PRODUCT_TYPES[t.kind][1], "includeInIndex": 0, "path": t.product, "sourceTree": "BUILT_PRODUCTS_DIR",
    }, t.product) for t in targets}
    framework_refs = {}
    for fw in sorted({f for t in targets for f in t.system_frameworks}):
        framework_refs[fw] = objs.add("PBXFileReference", ("sdk", fw), {
            "lastKnownFileType": "wrapper.framework", "name": f"{fw}.framework",
            "path": f"System/Library/Frameworks/{fw}.framework", "sourceTree": "SDKROOT",
        }, f"{fw}.framework")

    def children(folder: str) -> list[Ref]:
        """A folder's subfolder groups (sorted), then its files (sorted); folder "" is the top."""
        inside = [p[len(folder):] for p in sorted(files) if p.startswith(folder)]
        subfolders = sorted({rest.split("/")[0] for rest in inside if "/" in rest})
        return [group(folder + d + "/") for d in subfolders] + [file_refs[folder + rest] for rest in inside if "/" not in rest]

    def group(folder: str) -> Ref:
        name = folder.rstrip("/").split("/")[-1]
        return objs.add("PBXGroup", ("folder", folder), {"children": children(folder), "path": name, "sourceTree": "<group>"}, name)

    products = objs.add("PBXGroup", ("products",), {"children": [product_refs[t.name] for t in targets], "name": "Products",
                                                    "sourceTree": "<group>"}, "Products")
    frameworks = objs.add("PBXGroup", ("frameworks",), {"children": list(framework_refs.values()), "name": "Frameworks",
                                                        "sourceTree": "<group>"}, "Frameworks")
    # The main group is the project folder itself: its folders and files, then Frameworks and Products.
    main = objs.add("PBXGroup", ("main",), {"children": children("") + [frameworks, products], "sourceTree": "<group>"}, project)

    project_key = object_id("PBXProject", project)
    project_ref = Ref(project_key, "Project object")

    def configuration_list(owner: str, settings: dict[str, dict], what: str) -> Ref:
        configs = [objs.add("XCBuildConfiguration", (owner, name), {"buildSettings": s, "name": name}, name)
                   for name, s in settings.items()]
        return objs.add("XCConfigurationList", (owner,), {
            "buildConfigurations": configs, "defaultConfigurationIsVisible": 0, "defaultConfigurationName": "Release",
        }, f"Build configuration list for {what}")

    def phase(isa: str, target: XcodeTarget, paths: list[str], comment: str, settings: dict | None = None) -> Ref:
        refs = []
        for p in paths:
            ref = file_refs.get(p) or product_refs.get(p) or framework_refs[p]
            fields = {"fileRef": ref, **({"settings": settings} if settings else {})}
            refs.append(objs.add("PBXBuildFile", (target.name, isa, p), fields, f"{ref.comment} in {comment}"))
        return objs.add(isa, (target.name,), {
            "buildActionMask": 2147483647, "files": refs, "runOnlyForDeploymentPostprocessing": 0,
        }, comment)

    native: dict[str, Ref] = {}
    target_ids = {t.name: object_id("PBXNativeTarget", t.name) for t in targets}
    for t in targets:
        phases = []
        if t.public_headers:
            # Public headers carry their visibility in the build file.
            phases.append(phase("PBXHeadersBuildPhase", t, t.public_headers, "Headers", {"ATTRIBUTES": ["Public"]}))
        phases.append(phase("PBXSourcesBuildPhase", t, t.sources, "Sources"))
        phases.append(phase("PBXFrameworksBuildPhase", t, list(t.link_targets) + list(t.system_frameworks), "Frameworks"))
        phases.append(phase("PBXResourcesBuildPhase", t, t.resources, "Resources"))
        if t.embed_targets:
            embed = [objs.add("PBXBuildFile", (t.name, "embed", n), {
                "fileRef": product_refs[n], "settings": {"ATTRIBUTES": ["CodeSignOnCopy", "RemoveHeadersOnCopy"]},
            }, f"{by_name[n].product} in Embed Frameworks") for n in t.embed_targets]
            phases.append(objs.add("PBXCopyFilesBuildPhase", (t.name, "embed"), {
                "buildActionMask": 2147483647, "dstPath": "", "dstSubfolderSpec": 10, "files": embed,
                "name": "Embed Frameworks", "runOnlyForDeploymentPostprocessing": 0,
            }, "Embed Frameworks"))
        deps = []
        for n in t.dependencies:
            proxy = objs.add("PBXContainerItemProxy", (t.name, n), {
                "containerPortal": project_ref, "proxyType": 1, "remoteGlobalIDString": Ref(target_ids[n], n), "remoteInfo": n,
            }, "PBXContainerItemProxy")
            deps.append(objs.add("PBXTargetDependency", (t.name, n), {"target": Ref(target_ids[n], n), "targetProxy": proxy},
                                 "PBXTargetDependency"))
        settings = {name: dict(sorted(t.settings.items())) for name in project_settings}
        ref = objs.add("PBXNativeTarget", (t.name,), {
            "buildConfigurationList": configuration_list(t.name, settings, f'PBXNativeTarget "{t.name}"'),
            "buildPhases": phases, "buildRules": [], "dependencies": deps, "name": t.name, "productName": t.name,
            "productReference": product_refs[t.name], "productType": PRODUCT_TYPES[t.kind][0],
        }, t.name)
        assert ref.id == target_ids[t.name]
        native[t.name] = ref

    attributes = {
        "BuildIndependentTargetsInParallel": 1,
        "LastUpgradeCheck": LAST_UPGRADE_CHECK,
        "TargetAttributes": {native[t.name].id: {"CreatedOnToolsVersion": CREATED_ON_TOOLS_VERSION} for t in targets},
    }
    objs.objects[project_key] = ("PBXProject", {
        "attributes": attributes,
        "buildConfigurationList": configuration_list("project", project_settings, f'PBXProject "{project}"'),
        "compatibilityVersion": COMPATIBILITY,
        "developmentRegion": "en",
        "hasScannedForEncodings": 0,
        "knownRegions": ["en", "Base"],
        "mainGroup": main,
        "productRefGroup": products,
        "projectDirPath": "",
        "projectRoot": "",
        "targets": [native[t.name] for t in targets],
    }, "Project object")
    return _serialize(objs, project_ref)


def scheme(project: str, build: list[XcodeTarget], tests: list[XcodeTarget], launch: XcodeTarget | None) -> str:
    """A shared scheme (xcshareddata/xcschemes/<name>.xcscheme): builds `build`, tests `tests`,
    runs `launch`. Without one, Xcode makes per-user schemes that do not run the tests."""

    def ref(t: XcodeTarget, indent: str) -> str:
        return (f'{indent}<BuildableReference\n'
                f'{indent}   BuildableIdentifier = "primary"\n'
                f'{indent}   BlueprintIdentifier = "{object_id("PBXNativeTarget", t.name)}"\n'
                f'{indent}   BuildableName = "{xml_attr(t.product)}"\n'
                f'{indent}   BlueprintName = "{xml_attr(t.name)}"\n'
                f'{indent}   ReferencedContainer = "container:{xml_attr(project)}.xcodeproj">\n'
                f'{indent}</BuildableReference>\n')

    entries = "".join(
        '         <BuildActionEntry\n            buildForTesting = "YES"\n            buildForRunning = "YES"\n'
        '            buildForProfiling = "YES"\n            buildForArchiving = "YES"\n            buildForAnalyzing = "YES">\n'
        + ref(t, "            ") + "         </BuildActionEntry>\n" for t in build)
    testables = "".join('         <TestableReference\n            skipped = "NO">\n' + ref(t, "            ")
                        + "         </TestableReference>\n" for t in tests)
    runnable = ("      <BuildableProductRunnable\n         runnableDebuggingMode = \"0\">\n" + ref(launch, "         ")
                + "      </BuildableProductRunnable>\n") if launch else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Scheme\n   LastUpgradeVersion = "1500"\n   version = "1.7">\n'
        '   <BuildAction\n      parallelizeBuildables = "YES"\n      buildImplicitDependencies = "YES">\n'
        f'      <BuildActionEntries>\n{entries}      </BuildActionEntries>\n   </BuildAction>\n'
        '   <TestAction\n      buildConfiguration = "Debug"\n'
        '      selectedDebuggerIdentifier = "Xcode.DebuggerFoundation.Debugger.LLDB"\n'
        '      selectedLauncherIdentifier = "Xcode.DebuggerFoundation.Launcher.LLDB"\n'
        '      shouldUseLaunchSchemeArgsEnv = "YES">\n'
        f'      <Testables>\n{testables}      </Testables>\n   </TestAction>\n'
        '   <LaunchAction\n      buildConfiguration = "Debug"\n'
        '      selectedDebuggerIdentifier = "Xcode.DebuggerFoundation.Debugger.LLDB"\n'
        '      selectedLauncherIdentifier = "Xcode.DebuggerFoundation.Launcher.LLDB"\n'
        '      launchStyle = "0"\n      useCustomWorkingDirectory = "NO"\n      ignoresPersistentStateOnLaunch = "NO"\n'
        '      debugDocumentVersioning = "YES"\n      debugServiceExtension = "internal"\n      allowLocationSimulation = "YES">\n'
        f'{runnable}   </LaunchAction>\n'
        '   <ProfileAction\n      buildConfiguration = "Release"\n      shouldUseLaunchSchemeArgsEnv = "YES"\n'
        '      savedToolIdentifier = ""\n      useCustomWorkingDirectory = "NO"\n      debugDocumentVersioning = "YES">\n'
        f'{runnable}   </ProfileAction>\n'
        '   <AnalyzeAction\n      buildConfiguration = "Debug">\n   </AnalyzeAction>\n'
        '   <ArchiveAction\n      buildConfiguration = "Release"\n      revealArchiveInOrganizer = "YES">\n   </ArchiveAction>\n'
        '</Scheme>\n'
    )
