from ganmusic.cli import main

main()
