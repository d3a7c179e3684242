import sys

from telegraf_bridge.plugins.ndjson_tail.plugin import main

sys.exit(main())
