"""validatord (:3221): payload validators, the generate→validate→retry loop, the session log."""
