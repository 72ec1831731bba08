"""``google.colab.drive.mount``: makes ``mountpoint/MyDrive`` the test's persistent folder (FAKE_COLAB_DRIVE).

As on Colab: mounting again at the same place is a no-op; a mountpoint that is a non-empty folder is refused.
"""

import os

MOUNTS = []  # the mountpoints of this process, as the tests may want to see them


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    drive = os.environ.get("FAKE_COLAB_DRIVE")
    if not drive:
        raise ValueError("the Colab replica needs FAKE_COLAB_DRIVE (the folder that plays My Drive)")
    mountpoint = os.path.expanduser(mountpoint)
    target = os.path.join(mountpoint, "MyDrive")
    if os.path.islink(target) and os.path.realpath(target) == os.path.realpath(drive):
        print(
            f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, call "
            f'drive.mount("{mountpoint}", force_remount=True).'
        )
        MOUNTS.append(mountpoint)
        return
    if os.path.isdir(mountpoint) and os.listdir(mountpoint):
        raise ValueError("Mountpoint must not already contain files")
    os.makedirs(mountpoint, exist_ok=True)
    os.makedirs(drive, exist_ok=True)
    os.symlink(os.path.realpath(drive), target)
    MOUNTS.append(mountpoint)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
    for mountpoint in MOUNTS:
        target = os.path.join(mountpoint, "MyDrive")
        if os.path.islink(target):
            os.unlink(target)
    MOUNTS.clear()
