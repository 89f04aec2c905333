"""CCDash's schema as its newest release (v0.6.0 to v0.6.18, schema generation G9) creates it.

These are CCDash's own start-up statements (``backend/internal/database/db.go`` ``createTables()`` and
``FileSyncStateManager.InitializeSchema()``), in their order. The baseline revision creates them on an empty
database and, on an older file, runs the ones the file lacks, exactly as a newer CCDash start would have.
``tests/test_ccdash_adoption.py`` checks the result against the G9 facts in ``tests/data/generations.json``.
"""

from __future__ import annotations

RELEASE = "v0.6.18"

TABLES: dict[str, str] = {
    "sessions": """CREATE TABLE sessions (
    id VARCHAR PRIMARY KEY,
    project_name VARCHAR NOT NULL,
    project_path VARCHAR NOT NULL,
    start_time TIMESTAMP NOT NULL,
    end_time TIMESTAMP,
    total_input_tokens INTEGER DEFAULT 0,
    total_output_tokens INTEGER DEFAULT 0,
    total_tokens INTEGER DEFAULT 0,
    message_count INTEGER DEFAULT 0,
    total_cost DOUBLE DEFAULT 0.0,
    status VARCHAR DEFAULT 'active',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    project_id VARCHAR
)""",
    "messages": """CREATE TABLE messages (
    id VARCHAR PRIMARY KEY,
    session_id VARCHAR NOT NULL,
    parent_uuid VARCHAR,
    is_sidechain BOOLEAN DEFAULT false,
    user_type VARCHAR,
    message_type VARCHAR,
    message_role VARCHAR,
    model VARCHAR,
    content TEXT,
    input_tokens INTEGER DEFAULT 0,
    cache_creation_input_tokens INTEGER DEFAULT 0,
    cache_read_input_tokens INTEGER DEFAULT 0,
    output_tokens INTEGER DEFAULT 0,
    service_tier VARCHAR,
    request_id VARCHAR,
    timestamp TIMESTAMP NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (session_id) REFERENCES sessions(id)
)""",
    "session_windows": """CREATE TABLE session_windows (
    id TEXT PRIMARY KEY,
    window_start TIMESTAMP NOT NULL,
    window_end TIMESTAMP NOT NULL,
    reset_time TIMESTAMP NOT NULL,
    total_input_tokens INTEGER DEFAULT 0,
    total_output_tokens INTEGER DEFAULT 0,
    total_tokens INTEGER DEFAULT 0,
    message_count INTEGER DEFAULT 0,
    session_count INTEGER DEFAULT 0,
    total_cost DOUBLE DEFAULT 0.0,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
)""",
    "session_window_messages": """CREATE TABLE session_window_messages (
    id VARCHAR PRIMARY KEY,
    session_window_id TEXT NOT NULL,
    message_id VARCHAR NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (session_window_id) REFERENCES session_windows(id),
    FOREIGN KEY (message_id) REFERENCES messages(id),
    UNIQUE(session_window_id, message_id)
)""",
    "projects": """CREATE TABLE projects (
    id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    description TEXT,
    repository_url VARCHAR,
    language VARCHAR,
    framework VARCHAR,
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(name, path)
)""",
    "jobs": """CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    command TEXT NOT NULL,
    execution_directory TEXT NOT NULL,
    yolo_mode BOOLEAN DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'pending',
    priority INTEGER DEFAULT 0,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    output_log TEXT,
    error_log TEXT,
    exit_code INTEGER,
    pid INTEGER,
    scheduled_at TEXT,
    schedule_type TEXT,
    schedule_params TEXT,
    FOREIGN KEY (project_id) REFERENCES projects(id)
)""",
    "file_sync_state": """CREATE TABLE file_sync_state (
    file_path VARCHAR PRIMARY KEY,
    last_modified TIMESTAMP NOT NULL,
    file_size BIGINT NOT NULL,
    last_processed_line INTEGER DEFAULT 0,
    processed_until TIMESTAMP,
    checksum VARCHAR(64),
    sync_status VARCHAR DEFAULT 'pending',
    last_sync_time TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    error_message TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
)""",
}

# Columns later releases added to existing tables, with the ALTER each start runs (IF NOT EXISTS dropped:
# the baseline runs only those the file lacks).
ADDED_COLUMNS: dict[tuple[str, str], str] = {
    ("sessions", "total_cost"): "ALTER TABLE sessions ADD COLUMN total_cost DOUBLE DEFAULT 0.0",
    ("sessions", "project_id"): "ALTER TABLE sessions ADD COLUMN project_id VARCHAR",
    ("session_windows", "total_cost"): "ALTER TABLE session_windows ADD COLUMN total_cost DOUBLE DEFAULT 0.0",
    ("jobs", "schedule_params"): "ALTER TABLE jobs ADD COLUMN schedule_params TEXT",
}

INDEXES: dict[str, str] = {
    "idx_sessions_project_name": "CREATE INDEX idx_sessions_project_name ON sessions(project_name)",
    "idx_sessions_project_id": "CREATE INDEX idx_sessions_project_id ON sessions(project_id)",
    "idx_sessions_start_time": "CREATE INDEX idx_sessions_start_time ON sessions(start_time)",
    "idx_sessions_status": "CREATE INDEX idx_sessions_status ON sessions(status)",
    "idx_messages_session_id": "CREATE INDEX idx_messages_session_id ON messages(session_id)",
    "idx_messages_timestamp": "CREATE INDEX idx_messages_timestamp ON messages(timestamp)",
    "idx_messages_message_role": "CREATE INDEX idx_messages_message_role ON messages(message_role)",
    "idx_session_windows_times": "CREATE INDEX idx_session_windows_times ON session_windows(window_start, window_end)",
    "idx_session_windows_active": "CREATE INDEX idx_session_windows_active ON session_windows(is_active)",
    "idx_session_windows_reset_time": "CREATE INDEX idx_session_windows_reset_time ON session_windows(reset_time)",
    "idx_session_window_messages_window_id": (
        "CREATE INDEX idx_session_window_messages_window_id ON session_window_messages(session_window_id)"
    ),
    "idx_session_window_messages_message_id": (
        "CREATE INDEX idx_session_window_messages_message_id ON session_window_messages(message_id)"
    ),
    "idx_projects_name": "CREATE INDEX idx_projects_name ON projects(name)",
    "idx_projects_active": "CREATE INDEX idx_projects_active ON projects(is_active)",
    "idx_projects_path": "CREATE INDEX idx_projects_path ON projects(path)",
    "idx_jobs_project_id": "CREATE INDEX idx_jobs_project_id ON jobs(project_id)",
    "idx_jobs_status": "CREATE INDEX idx_jobs_status ON jobs(status)",
    "idx_jobs_created_at": "CREATE INDEX idx_jobs_created_at ON jobs(created_at DESC)",
    "idx_jobs_priority_created": "CREATE INDEX idx_jobs_priority_created ON jobs(priority DESC, created_at DESC)",
    "idx_file_sync_state_path": "CREATE INDEX idx_file_sync_state_path ON file_sync_state(file_path)",
    "idx_file_sync_state_status": "CREATE INDEX idx_file_sync_state_status ON file_sync_state(sync_status)",
    "idx_file_sync_state_modified": "CREATE INDEX idx_file_sync_state_modified ON file_sync_state(last_modified)",
}
